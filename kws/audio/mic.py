"""Microphone input through sounddevice (PortAudio), converted to 16 kHz mono float32 on the fly.

    from kws import Detector
    from kws.audio.mic import Microphone

    det = Detector.from_texts(["hey computer"])
    with Microphone() as mic:                  # MicConfig(device="USB") to pick a device
        for block in mic:                      # float32, 16 kHz, mono
            for event in det.process(block):
                print(event.keyword, event.score)

The device is opened at its own default rate when it can be (then 16 kHz, 48 kHz, 44.1 kHz, ...:
the first rate it accepts) and soxr converts to 16 kHz, so devices that refuse 16 kHz work.
A device that stops delivering audio (unplugged, sound server restarted) is reported through
``on_message`` and opened again as soon as it is back; lost audio (input overflow, or blocks the
reader did not take in time) is counted in :attr:`Microphone.overflows` and reported. Every
failure to open a device raises a :class:`NoMicrophone` whose message says what to do.
"""
from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from kws.audio.io import SAMPLE_RATE
from kws.errors import KwsError, UsageError

Device = Union[int, str, None]

INSTALL_HINT = ("to use a microphone, install PortAudio (Debian/Ubuntu: sudo apt-get install "
                "libportaudio2; Fedora: sudo dnf install portaudio; Arch: sudo pacman -S portaudio)")


class NoMicrophone(KwsError, RuntimeError):
    """Recording is not possible; the message says why and what to do."""


class DeviceNotFound(NoMicrophone):
    """The asked device (name or index) matches no input device, or several."""


class DeviceRefused(NoMicrophone):
    """The device exists but could not be opened at any sample rate or channel count tried."""


@dataclass(frozen=True)
class MicConfig:
    """How to open the input device. The defaults work for any microphone.

    ``rates`` are tried after the device's own default rate; ``samplerate`` forces one rate.
    A device that delivers no audio for ``stall_s`` seconds (or whose stream ends) counts as gone
    and is looked for again every ``retry_s`` seconds.
    """

    device: Device = None             # index, or (part of) the name; None: the system's default input
    block_s: float = 0.02             # seconds of audio per block from the device
    rates: Tuple[int, ...] = (SAMPLE_RATE, 48000, 44100, 32000, 22050, 96000, 8000)
    samplerate: Optional[int] = None
    latency: Union[str, float] = "low"
    stall_s: float = 2.0
    retry_s: float = 1.0
    queue_blocks: int = 500           # blocks held for a slow reader before audio is dropped
    report_every_s: float = 5.0       # at most one overflow warning this often

    def __post_init__(self):
        if self.block_s <= 0 or self.stall_s <= 0 or self.retry_s <= 0 or self.queue_blocks < 1:
            raise UsageError("block_s, stall_s and retry_s must be > 0 and queue_blocks >= 1")
        if self.samplerate is not None and self.samplerate <= 0:
            raise UsageError("samplerate must be positive")


def _sd():
    try:
        import sounddevice as sd
    except (OSError, ImportError) as exc:     # the PortAudio library (or sounddevice) is missing
        raise NoMicrophone(f"audio input unavailable ({exc}): {INSTALL_HINT}") from exc
    return sd


def _rescan(sd) -> None:
    """Make PortAudio list devices afresh (it reads the list once, at initialisation)."""
    try:
        sd._terminate()
        sd._initialize()
    except Exception:          # an older sounddevice without them, or PortAudio refusing: keep the old list
        pass


def _hostapi_name(sd, index: int) -> str:
    try:
        return str(sd.query_hostapis(index)["name"])
    except Exception:
        return "?"


def list_input_devices() -> List[Dict]:
    """Every device with an input channel: index, name, hostapi, channels, samplerate, default."""
    sd = _sd()
    try:
        devices = list(sd.query_devices())
    except Exception as exc:
        raise NoMicrophone(f"cannot list audio devices: {exc}") from exc
    try:
        default = int(sd.query_devices(kind="input")["index"])
    except Exception:
        default = -1
    return [{"index": int(d.get("index", i)), "name": str(d["name"]),
             "hostapi": _hostapi_name(sd, d.get("hostapi", 0)), "channels": int(d["max_input_channels"]),
             "samplerate": int(d["default_samplerate"]), "default": int(d.get("index", i)) == default}
            for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]


def describe_devices(devices: List[Dict]) -> str:
    """One line per input device, the default marked with '*'."""
    return "\n".join(f"{'*' if d['default'] else ' '} {d['index']:3d}  {d['name']}  ({d['hostapi']}, "
                     f"{d['channels']} ch, {d['samplerate']} Hz)" for d in devices)


def _no_input_message() -> str:
    return ("no input device found: plug in a microphone, start the sound server, or allow this "
            "program to use the microphone (macOS: System Settings > Privacy & Security > Microphone; "
            "Windows: Settings > Privacy > Microphone)")


def input_device(device: Device = None) -> dict:
    """Resolve ``device`` (None: the default input; an index; or a case-insensitive part of a name)
    to sounddevice's description of it, or raise :class:`NoMicrophone` saying what is there."""
    devices = list_input_devices()
    if not devices:
        raise NoMicrophone(_no_input_message())
    sd = _sd()
    listing = "Input devices (python -m kws listen --list-devices):\n" + describe_devices(devices)
    if device is None:
        chosen = next((d for d in devices if d["default"]), devices[0])
    elif isinstance(device, int) or str(device).strip().isdigit():
        idx = int(device)
        chosen = next((d for d in devices if d["index"] == idx), None)
        if chosen is None:
            raise DeviceNotFound(f"no input device with index {idx}.\n{listing}")
    else:
        want = str(device).strip().lower()
        found = [d for d in devices if d["name"].lower() == want] or \
                [d for d in devices if want in d["name"].lower()]
        if not found:
            raise DeviceNotFound(f"no input device matches {device!r}.\n{listing}")
        if len(found) > 1:
            raise DeviceNotFound(f"{device!r} matches {len(found)} input devices: give its index or more "
                                 f"of its name.\n{listing}")
        chosen = found[0]
    try:
        return dict(sd.query_devices(chosen["index"]))
    except Exception as exc:
        raise DeviceNotFound(f"input device {chosen['index']} is gone: {exc}") from exc


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Microphone:
    """Iterate 16 kHz float32 mono blocks from an input device until the caller stops.

    Survives the device going away: iteration waits (telling ``on_message``) until it is back.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, config: MicConfig = MicConfig(),
                 on_message: Callable[[str], None] = _stderr):
        self.config = config
        self.on_message = on_message
        self.info: Optional[dict] = None      # the device in use (sounddevice's description)
        self.samplerate: Optional[int] = None  # the rate the device records at
        self.channels = 1
        self.overflows = 0      # input overflows + blocks dropped because the reader was too slow
        self.callback_errors: List[str] = []   # the last errors met in the audio callback
        self.losses = 0         # times the device went away
        self.samples = 0        # 16 kHz samples delivered
        self.short_s = 0.0      # seconds of audio the device failed to deliver in time (see _check)
        self._reported = 0
        self._last_report = 0.0
        self._frames = 0        # device frames since the last check
        self._checked = 0.0
        self._q: "queue.Queue[np.ndarray]" = queue.Queue(maxsize=config.queue_blocks)
        self._finished = threading.Event()
        self._stream = None
        self._resampler = None
        self._name: Optional[str] = None

    # ------------------------------------------------------------------ opening
    def open(self) -> dict:
        """Open the device (raises :class:`NoMicrophone` with the reason); returns its description."""
        if self._stream is None:
            self._open(self.config.device)
        return self.info

    def _open(self, device: Device) -> None:
        sd = _sd()
        info = input_device(device)
        cfg = self.config
        own = int(info["default_samplerate"])
        rates = [cfg.samplerate] if cfg.samplerate else list(dict.fromkeys([own, *cfg.rates]))
        channels = [1] + ([2] if info["max_input_channels"] >= 2 else [])
        tried = []
        for ch in channels:
            for rate in rates:
                try:
                    sd.check_input_settings(device=info["index"], channels=ch, dtype="float32",
                                            samplerate=rate)
                    stream = sd.InputStream(device=info["index"], channels=ch, samplerate=rate,
                                            dtype="float32", blocksize=max(1, int(round(rate * cfg.block_s))),
                                            latency=cfg.latency, callback=self._callback,
                                            finished_callback=self._finished.set)
                except Exception as exc:
                    tried.append(f"{rate} Hz {ch} ch: {exc}")
                    continue
                self._finished.clear()
                try:
                    stream.start()
                except Exception as exc:
                    tried.append(f"{rate} Hz {ch} ch: {exc}")
                    self._close(stream)
                    continue
                import soxr

                self._stream, self.info, self.samplerate, self.channels = stream, info, rate, ch
                self._frames, self._checked = 0, time.monotonic()
                self._name = str(info["name"])
                self._resampler = (None if rate == SAMPLE_RATE else
                                   soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32"))
                if len(tried) and rate != own:
                    self.on_message(f"{self._name!r} refused {tried[0]}; recording at {rate} Hz, "
                                    f"{ch} channel(s), converted to 16 kHz mono")
                return
        raise DeviceRefused(f"input device {info['name']!r} could not be opened: " + "; ".join(tried))

    def _callback(self, indata, frames, time_info, status) -> None:
        # never raises: an exception here makes PortAudio stop the stream for good, so a block
        # that cannot be taken is counted as dropped (and its error kept for the report)
        try:
            self._frames += frames
            if status.input_overflow:
                self.overflows += 1
            block = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1, dtype=np.float32)
            self._q.put_nowait(block)
        except queue.Full:
            self.overflows += 1
        except Exception as exc:
            self.overflows += 1
            self.callback_errors = (self.callback_errors + [f"{type(exc).__name__}: {exc}"])[-10:]

    @staticmethod
    def _close(stream) -> None:
        try:
            stream.abort()
        except Exception:
            pass
        try:
            stream.close()
        except Exception:
            pass

    def close(self) -> None:
        """Stop recording and release the device."""
        if self._stream is not None:
            self._close(self._stream)
            self._stream = None

    def __enter__(self) -> "Microphone":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[np.ndarray]:
        self.open()
        last = time.monotonic()
        while True:
            try:
                block = self._q.get(timeout=0.05)
            except queue.Empty:
                if self._finished.is_set():
                    self._recover("its audio stream ended")
                    last = time.monotonic()
                elif time.monotonic() - last > self.config.stall_s:
                    self._recover(f"no audio for {self.config.stall_s:g} s")
                    last = time.monotonic()
                continue
            last = time.monotonic()
            self._check()
            out = block if self._resampler is None else self._resampler.resample_chunk(block)
            if out.size:
                self.samples += out.size
                yield out

    def _check(self, final: bool = False) -> None:
        """Report lost audio: overflows, and a device that delivers less than its rate says (a
        sound server too loaded to keep up drops audio without telling PortAudio)."""
        now = time.monotonic()
        span = now - self._checked
        if span >= max(1.0, self.config.report_every_s) and self.samplerate:
            short = span - self._frames / self.samplerate
            if short > 0.1 * span:
                self.short_s += short
                self.on_message(f"warning: {self._name!r} delivered {span - short:.1f} s of audio in "
                                f"{span:.1f} s: audio is lost before it reaches kws (overloaded CPU "
                                f"or sound server?)")
            self._frames, self._checked = 0, now
        if self.overflows > self._reported and (final or now - self._last_report >= self.config.report_every_s):
            self.on_message(f"warning: audio lost {self.overflows - self._reported} time(s) "
                            f"({self.overflows} in all): input overflow, or the CPU is not keeping up")
            self._reported = self.overflows
            self._last_report = now

    def _recover(self, reason: str) -> None:
        """The device stopped: close it, then reopen it (by name) once it is back."""
        self.losses += 1
        name = self._name
        self.on_message(f"audio device {name!r} stopped ({reason}): waiting for it to come back "
                        f"- Ctrl-C to stop")
        self.close()
        # an index may change when a device comes back; its name does not
        want = name if isinstance(self.config.device, int) or str(self.config.device or "").isdigit() \
            else self.config.device
        t0 = time.monotonic()
        sd = _sd()
        while True:
            time.sleep(self.config.retry_s)
            _rescan(sd)
            try:
                self._open(want)
                break
            except NoMicrophone:
                continue
        self.on_message(f"audio device {self._name!r} is back after {time.monotonic() - t0:.1f} s "
                        f"({self.samplerate} Hz)")

    def summary(self) -> str:
        """What was recorded, and what went wrong, in a line."""
        self._check(final=True)
        short = f", {self.short_s:.1f} s not delivered in time" if self.short_s else ""
        return (f"{self.samples / SAMPLE_RATE:.1f} s of audio from {self._name!r}, "
                f"{self.overflows} overflow(s){short}, device lost {self.losses} time(s)")


def record(seconds: float, device: Device = None) -> np.ndarray:
    """Record ``seconds`` of 16 kHz mono float32 audio from the microphone."""
    need = int(round(seconds * SAMPLE_RATE))
    got: List[np.ndarray] = []
    n = 0
    with Microphone(MicConfig(device=device)) as mic:
        for block in mic:
            got.append(block)
            n += block.size
            if n >= need:
                break
    return np.concatenate(got)[:need]


@contextmanager
def null_sink(name: str = "kws_virtual") -> Iterator[Dict[str, str]]:
    """A virtual device on the running PulseAudio (or PipeWire) server, for tests and benchmarks.

    Loads a null sink ``name`` and yields the environment (``PULSE_SINK``, ``PULSE_SOURCE``) under
    which programs play into it and record its monitor as their default microphone; the sink is
    unloaded on exit. Raises :class:`NoMicrophone` when no sound server answers.
    """
    if not shutil.which("pactl"):
        raise NoMicrophone("pactl not found (apt-get install pulseaudio-utils)")
    if subprocess.run(["pactl", "info"], capture_output=True, timeout=10).returncode != 0:
        raise NoMicrophone("no PulseAudio or PipeWire server is running (.ci/run starts one; by hand: "
                           "pulseaudio -D --exit-idle-time=-1)")
    r = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={name}"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise NoMicrophone(f"could not load a null sink: {r.stderr.strip()}")
    try:
        yield {"PULSE_SINK": name, "PULSE_SOURCE": f"{name}.monitor"}
    finally:
        subprocess.run(["pactl", "unload-module", r.stdout.strip()], capture_output=True, timeout=10)
