#!/usr/bin/env python3
"""Builds examples/prisma.zip from examples/prisma/ the way a deploy pipeline zips the
prisma/ folder: entries under `prisma/`, deflated, with fixed timestamps so the zip (and
its sha256 in outcomes) is reproducible."""
import os
import sys
import zipfile

src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED) as zf:
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            arcname = os.path.join("prisma", os.path.relpath(path, src))
            info = zipfile.ZipInfo(arcname, date_time=(2024, 3, 1, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            with open(path, "rb") as f:
                zf.writestr(info, f.read())
os.replace(out + ".tmp", out)
