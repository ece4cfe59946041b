"""The contract between the worker and the runner inside every model image. Standard library only.

Both sides import this module: the runner to speak the protocol, the worker to read it.

    stdin   the job's input, raw bytes, closed at the end
    stdout  only the outputs: OUTPUT_BEGIN, the base64 of a tar of /output, OUTPUT_END
    stderr  the model's own prints, then on failure one line ERROR_PREFIX + a JSON record
            {"stage", "type", "message", "traceback"}
    exit    0, or one of the EXIT_* codes below (137, killed, comes from the engine)
"""

OUTPUT_BEGIN = "MODELFARM-OUTPUT-BEGIN"
OUTPUT_END = "MODELFARM-OUTPUT-END"
ERROR_PREFIX = "MODELFARM-ERROR "

EXIT_OK = 0
EXIT_LOAD_FAILED = 3
EXIT_PREDICT_FAILED = 4
EXIT_BAD_RESULT = 5
EXIT_OUTPUT_FAILED = 6
EXIT_KILLED = 137

# The fixed, unprivileged user every model runs as (the image's USER and the sandbox's user).
MODEL_UID = 10001

# Where the runner finds the model and leaves outputs inside the image.
MODEL_DIR = "/model"
OUTPUT_DIR = "/output"
INPUT_DIR = "/tmp/modelfarm-input"

SELF_TEST_FLAG = "--self-test"
INPUT_NAME_FLAG = "--input-name"
