"""CSV downloads from the console: UTF-8 with a byte-order mark, so Excel opens Chinese names right.

Excel reads a CSV without a BOM in the machine's legacy code page (GBK on a Chinese Windows,
cp1252 elsewhere), which turns 张伟 into mojibake; with the BOM it reads UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response

__all__ = ["BOM", "csv_response"]

BOM = "\ufeff"


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV attachment: BOM, then the header and the rows (``None`` as an empty cell)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    disposition = (
        f"attachment; filename=\"{filename.encode('ascii', 'replace').decode()}\"; filename*=UTF-8''{quote(filename)}"
    )
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )
