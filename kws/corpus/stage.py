"""Real audio for training, packed small enough to travel with a training command.

    python -m kws.corpus.stage speech --data ../shared/data --out .carry/speech
    python -m kws.corpus.stage noise  --data ../shared/data --out .carry/noise.ogg
    python -m kws.corpus.stage music  --deb wesnoth-1.16-music_*.deb --minutes 20 --out .carry/music.ogg

``speech``: the speechocean762 sentences of the tuning half of the speakers (kws.corpus.real.speaker_half
'a'; the held-out half 'b' is never trained on) with their word times (kws.corpus.align), and
LibriSpeech train-clean-100 from librispeech-bits (251 speakers; test-other stays for evaluation).
The Ogg/Opus files are copied as they are (about 6 kB per second); ``index.json`` lists them with
their role (``sentence``: words with times; ``background``: speech only).

``noise``: the recordings of ../shared/data/noise, as one 16 kHz Ogg/Opus file.

``music``: real recorded music from a Debian music package's OGG files (e.g. ``apt-get download
wesnoth-1.16-music``, GPL-2+), a few tracks cut and resampled to 16 kHz mono, as one Ogg/Opus
file. The evaluation uses another package's music, never this one.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List

import numpy as np

from kws.audio.io import load_audio
from kws.corpus.align import SUBDIR, load_alignments
from kws.corpus.real import DEFAULT_DATA, speaker_half

OPUS = {"format": "OGG", "subtype": "OPUS"}


def stage_speech(data: Path, out: Path, half: str = "a") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    index: List[dict] = []
    for r in load_alignments():
        if speaker_half(r["speaker"]) != half:
            continue
        dst = out / "audio" / Path(r["path"]).name
        shutil.copyfile(Path(data) / SUBDIR / r["path"], dst)
        index.append({"file": f"audio/{dst.name}", "role": "sentence", "speaker": r["speaker"],
                      "words": r["words"]})
    for f in sorted((Path(data) / "librispeech-bits" / "train-clean-100").glob("*.opus")):
        dst = out / "audio" / f"ls-{f.name}"
        shutil.copyfile(f, dst)
        index.append({"file": f"audio/{dst.name}", "role": "background", "speaker": f.stem.split("-")[0]})
    (out / "index.json").write_text(json.dumps({"half": half, "files": index}))
    size = sum(p.stat().st_size for p in (out / "audio").iterdir())
    return {"files": len(index), "sentences": sum(i["role"] == "sentence" for i in index),
            "megabytes": round(size / 2 ** 20, 1)}


def _write_opus(audio: np.ndarray, path: Path) -> None:
    import soundfile as sf

    sf.write(str(path), audio, 16000, **OPUS)


def stage_noise(data: Path, out: Path) -> dict:
    files = sorted((Path(data) / "noise").glob("*.flac"))
    audio = np.concatenate([load_audio(f) for f in files])
    _write_opus(audio, out)
    return {"files": [f.name for f in files], "seconds": round(audio.size / 16000, 1)}


def stage_music(deb: Path, out: Path, minutes: float = 20.0, seed: int = 0) -> dict:
    """Tracks of a Debian music package, picked at random until ``minutes`` of audio."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        tracks = sorted(p for p in Path(tmp).rglob("*") if p.suffix.lower() in (".ogg", ".opus", ".flac", ".wav"))
        if not tracks:
            raise SystemExit(f"{deb}: no audio files inside")
        random.Random(seed).shuffle(tracks)
        parts, total, used = [], 0, []
        for t in tracks:
            x = load_audio(t)
            take = min(x.size, int(90 * 16000))          # at most 90 s of each track
            s = (x.size - take) // 2
            parts.append(x[s:s + take])
            used.append(t.name)
            total += take
            if total >= minutes * 60 * 16000:
                break
    audio = np.concatenate(parts)
    audio = audio / max(1e-6, float(np.abs(audio).max())) * 0.9
    _write_opus(audio.astype(np.float32), out)
    return {"package": deb.name, "tracks": used, "seconds": round(audio.size / 16000, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.stage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("speech", "noise", "music"))
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--deb", type=Path, help="music: a Debian package of music files")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.what == "speech":
        res = stage_speech(args.data, args.out)
    elif args.what == "noise":
        res = stage_noise(args.data, args.out)
    else:
        if args.deb is None:
            raise SystemExit("music needs --deb PACKAGE.deb (apt-get download wesnoth-1.16-music)")
        res = stage_music(args.deb, args.out, args.minutes)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
