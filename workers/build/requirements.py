"""requirements.txt rules (resolving them to wheels is workers/build/wheels.py's job).

Only plain requirement lines are accepted: anything that changes where or how pip installs
(options, URLs, paths) is refused with its line number, since the farm decides where packages
come from.
"""

from packaging.requirements import InvalidRequirement, Requirement


class RequirementsError(ValueError):
    pass


def parse_requirements(text: str) -> list[str]:
    """The requirement lines, normalised; raises RequirementsError naming the first bad line."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        where = f"requirements.txt line {number} ({raw.strip()[:80]!r})"
        if line.startswith("-") or line.endswith("\\"):
            raise RequirementsError(
                f"{where}: pip options are not allowed; list package names and versions only"
            )
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise RequirementsError(
                f"{where}: not a requirement (URLs and local paths are not allowed): {error}"
            ) from None
        if requirement.url:
            raise RequirementsError(f"{where}: direct URL references are not allowed")
        lines.append(str(requirement))
    return lines
