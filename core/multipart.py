"""A package uploaded in parts: the store's multipart upload, driven by the API, with the parts
sent by the client straight to the store through presigned URLs.

The upload's object key is the version's sealed package key: the store shows nothing there
until the upload is completed, which the API does only when the build starts and every part is
there at its size. Completing it ends the upload, and with it every part URL, so nothing can
write to the package afterwards; no copy is needed to seal it. An upload that is never
completed is aborted with its version (core/removal.py), or by the retention pass when its row
is gone (workers/retention.py), and the store frees its parts.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from minio.datatypes import Part
from minio.error import S3Error

from core.settings import settings
from core.storage import Storage

# S3's bound: at most 10,000 parts (and each but the last at least 5 MiB, which bounds
# MODELFARM_UPLOAD_PART_BYTES).
MAX_PARTS = 10_000
_GONE = ("NoSuchUpload", "NoSuchKey")


@dataclass(frozen=True)
class Layout:
    """How an upload of `size` bytes is cut: parts of part_bytes, the last one shorter."""

    size: int
    part_bytes: int

    @classmethod
    def of(cls, size: int) -> "Layout":
        return cls(size, max(settings.upload_part_bytes, math.ceil(size / MAX_PARTS)))

    @property
    def count(self) -> int:
        return max(1, math.ceil(self.size / self.part_bytes))

    def bytes_of(self, number: int) -> int:
        """The size part `number` (1-based) must have."""
        return min(self.part_bytes, self.size - (number - 1) * self.part_bytes)


class Multipart:
    """The multipart uploads of one bucket (the minio SDK keeps these calls private; they are
    the plain S3 API, which every S3 server answers)."""

    def __init__(self, storage: Storage) -> None:
        self.storage, self.client, self.bucket = storage, storage.client, storage.bucket

    def start(self, key: str) -> str:
        """A new upload to key; its id."""
        return self.client._create_multipart_upload(self.bucket, key, {})

    def part_url(self, key: str, upload_id: str, number: int) -> str:
        """A presigned PUT of part `number`."""
        query = {"partNumber": str(number), "uploadId": upload_id}
        return self.storage.public_client.get_presigned_url(
            "PUT", self.bucket, key, self.storage.url_lifetime, extra_query_params=query
        )

    def parts(self, key: str, upload_id: str, layout: Layout) -> dict[int, Part] | None:
        """The parts the store has, by number; None when the upload is gone. A part sent again
        may be listed twice (SeaweedFS lists each copy, in no order, and completes the one whose
        ETag it is given): the copy at its size in layout is the one kept."""
        found: dict[int, Part] = {}
        marker = None
        while True:
            try:
                listed = self.client._list_parts(
                    self.bucket, key, upload_id, part_number_marker=marker
                )
            except S3Error as error:
                if error.code in _GONE:
                    return None
                raise
            for part in listed.parts:
                number = part.part_number
                if number not in found or part.size == layout.bytes_of(number):
                    found[number] = part
            if not listed.is_truncated:
                return found
            marker = listed.next_part_number_marker

    def complete(self, key: str, upload_id: str, parts: list[Part]) -> None:
        self.client._complete_multipart_upload(self.bucket, key, upload_id, parts)

    def abort(self, key: str, upload_id: str) -> None:
        """Ends the upload and frees its parts; done already is fine."""
        try:
            self.client._abort_multipart_upload(self.bucket, key, upload_id)
        except S3Error as error:
            if error.code not in _GONE:
                raise

    def open_uploads(self, prefix: str) -> list[tuple[str, str, datetime]]:
        """(key, upload id, when it started) of the open uploads under prefix."""
        listed = self.client._list_multipart_uploads(self.bucket, prefix=prefix, max_uploads=1000)
        return [
            (upload.object_name, upload.upload_id, upload.initiated_time)
            for upload in listed.uploads
            if upload.upload_id and upload.initiated_time
        ]

    def started_before(self, prefix: str, moment: datetime) -> list[tuple[str, str]]:
        """(key, upload id) of the open uploads under prefix started before moment."""
        return [(key, id_) for key, id_, when in self.open_uploads(prefix) if when < moment]


def missing(layout: Layout, parts: dict[int, Part]) -> list[int]:
    """The numbers of the parts not there at their size, in order."""
    return [
        number
        for number in range(1, layout.count + 1)
        if number not in parts or parts[number].size != layout.bytes_of(number)
    ]
