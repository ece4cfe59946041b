"""The bodies and answers of uploads in parts: a version's package
(api/routes/package_uploads.py) and its files sent by content (api/routes/content_files.py)."""

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.contents import MAX_FILES, SHA256_HEX, path_problem
from core.settings import settings


class PackageUploadStart(BaseModel):
    size: int = Field(gt=0, description="The package ZIP's size in bytes.")


class PartUrl(BaseModel):
    number: int
    bytes: int = Field(description="The part's exact size: bytes [(number-1)*part_bytes, ...).")
    url: str = Field(description="PUT the part here.")


class UploadInParts(BaseModel):
    size: int
    part_bytes: int
    parts_total: int
    parts_done: list[int] = Field(description="The parts the store has, at their size.")
    parts: list[PartUrl] = Field(description="The parts still to PUT, each with its URL.")
    expires_in: int = Field(description="Seconds the URLs stay valid; ask again for new ones.")


class ContentFileDeclared(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(
        min_length=1, max_length=1024, description="Its path in the package, as in the ZIP."
    )
    size: int = Field(gt=0, le=settings.package_max_file_bytes, description="In bytes.")
    sha256: str = Field(pattern=SHA256_HEX.pattern, description="Of its bytes, lowercase hex.")
    executable: bool = False

    @field_validator("path")
    @classmethod
    def _safe_path(cls, path: str) -> str:
        problem = path_problem(path)
        if problem:
            raise ValueError(f"the path {path!r} {problem}")
        return path


class ContentFilesDeclared(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[ContentFileDeclared] = Field(max_length=MAX_FILES)

    @field_validator("files")
    @classmethod
    def _each_path_once(cls, files: list[ContentFileDeclared]) -> list[ContentFileDeclared]:
        counted = Counter(each.path for each in files)
        twice = sorted(path for path, count in counted.items() if count > 1)
        if twice:
            raise ValueError(f"each path may be declared once; {twice[0]!r} is more than once")
        sizes = {(each.sha256, each.size) for each in files}
        if len(sizes) != len({sha256 for sha256, _ in sizes}):
            raise ValueError("two files with the same sha256 must have the same size")
        return files


class ContentFileState(BaseModel):
    path: str
    size: int
    sha256: str
    upload: UploadInParts | None = Field(
        description="null: the farm has this content already (yours, from an earlier push); "
        "else the parts of it to PUT, as for a package in parts."
    )


class ContentFiles(BaseModel):
    files: list[ContentFileState]
