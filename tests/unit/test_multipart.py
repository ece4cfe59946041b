"""How a package upload is cut into parts, and which parts still count as missing."""

from minio.datatypes import Part

from core.multipart import MAX_PARTS, Layout, missing
from core.settings import settings

MB = 1024**2


def _part(number: int, size: int) -> Part:
    return Part(part_number=number, etag=f"e{number}", size=size)


def test_parts_are_the_setting_s_size_but_the_last():
    layout = Layout(size=3 * settings.upload_part_bytes + 7, part_bytes=settings.upload_part_bytes)
    assert layout.count == 4
    assert [layout.bytes_of(n) for n in range(1, 5)] == [settings.upload_part_bytes] * 3 + [7]
    exact = Layout(size=2 * 64 * MB, part_bytes=64 * MB)
    assert exact.count == 2 and exact.bytes_of(2) == 64 * MB
    assert Layout(size=1, part_bytes=64 * MB).count == 1


def test_a_package_past_s3_s_part_count_gets_bigger_parts():
    huge = settings.upload_part_bytes * MAX_PARTS * 3
    layout = Layout.of(huge)
    assert layout.count <= MAX_PARTS
    assert layout.part_bytes * layout.count >= huge
    assert Layout.of(10 * MB).part_bytes == settings.upload_part_bytes


def test_a_part_absent_or_of_another_size_is_missing():
    layout = Layout(size=3 * 8 * MB - 1, part_bytes=8 * MB)
    there = {1: _part(1, 8 * MB), 2: _part(2, 8 * MB - 1), 3: _part(3, 8 * MB - 1)}
    assert missing(layout, there) == [2]  # short
    assert missing(layout, {}) == [1, 2, 3]
    there[2] = _part(2, 8 * MB)
    assert missing(layout, there) == []
    there[4] = _part(4, 1)  # beyond the layout: ignored, never completed into the package
    assert missing(layout, there) == []
