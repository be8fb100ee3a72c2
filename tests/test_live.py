"""Live audio: `kws listen` through a real sound server, and device trouble by fault injection.

The live tests play recordings into a PulseAudio/PipeWire null sink while the real
`python -m kws listen` records the sink's monitor through sounddevice/PortAudio. They skip with
a message where no sound server runs (`.ci/run` starts one). The fault-injection tests replace
sounddevice with `FakeSD`, a stand-in whose devices can refuse rates, overflow, vanish and return.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import kws.audio.mic
from kws.audio.mic import DeviceNotFound, MicConfig, Microphone, NoMicrophone
from kws.commands import main
from kws.enroll.demo import sample_recording
from tests.conftest import ROOT, demo_set


# ---------------------------------------------------------------------------- fault injection
class FakeSD:
    """Enough of sounddevice's API for kws.audio.mic: devices, rate checks and callback streams.

    ``source(rate, n, start)`` gives the ``n`` samples a stream at ``rate`` delivers from sample
    ``start`` on; streams run at ``speed`` times real time (0: all ``blocks`` at once, at start()).
    """

    class PortAudioError(Exception):
        pass

    def __init__(self, devices, default=0, refuse=(), source=None, speed=1.0, blocks=None,
                 overflow_blocks=()):
        self.devices = [dict(d, index=i) for i, d in enumerate(devices)]
        self.default = default
        self.refuse = set(refuse)
        self.source = source or (lambda rate, n, start: np.zeros(n, np.float32))
        self.speed, self.blocks, self.overflow_blocks = speed, blocks, set(overflow_blocks)
        self.rescans = 0
        self.streams = []
        self.stalled = False        # streams stop calling back, but do not end

    def _device(self, i):
        if not 0 <= i < len(self.devices):
            raise self.PortAudioError(f"Error querying device {i}")
        return dict(self.devices[i])

    def query_devices(self, device=None, kind=None):
        if device is not None:
            return self._device(int(device))
        if kind == "input":
            return self._device(self.default)
        return [dict(d) for d in self.devices]

    def query_hostapis(self, index):
        return {"name": "Fake API"}

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        self._device(device)
        if samplerate in self.refuse:
            raise self.PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    def InputStream(self, **kw):
        s = FakeStream(self, **kw)
        self.streams.append(s)
        return s

    def _terminate(self):
        self.rescans += 1

    def _initialize(self):
        pass

    def unplug(self, name):
        """The device vanishes: its streams end, as PortAudio's do."""
        self.devices = [d for d in self.devices if d["name"] != name]
        for s in self.streams:
            s.gone.set()

    def plug(self, device, first=True):
        """The device returns (by default listed first, so its index changes)."""
        self.devices = [device] + self.devices if first else self.devices + [device]
        self.devices = [dict(d, index=i) for i, d in enumerate(self.devices)]


class FakeStream:
    def __init__(self, sd, device, channels, samplerate, dtype, blocksize, latency, callback,
                 finished_callback):
        self.sd, self.rate, self.channels, self.block = sd, samplerate, channels, blocksize
        self.callback, self.finished = callback, finished_callback
        self.gone, self.stop = threading.Event(), threading.Event()
        self.thread = None

    def _deliver(self, i):
        x = self.sd.source(self.rate, self.block, i * self.block)
        data = np.repeat(x[:, None], self.channels, axis=1).astype(np.float32)
        self.callback(data, self.block, None, SimpleNamespace(input_overflow=i in self.sd.overflow_blocks))

    def start(self):
        if self.sd.speed == 0:
            for i in range(self.sd.blocks):
                self._deliver(i)
            return
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i, t0 = 0, time.monotonic()
        while not self.stop.is_set():
            if self.gone.is_set():
                self.finished()
                return
            if not self.sd.stalled:
                self._deliver(i)
                i += 1
            time.sleep(max(0.0, t0 + i * self.block / self.rate / self.sd.speed - time.monotonic()))
            if self.sd.stalled:
                time.sleep(0.01)

    def abort(self):
        self.stop.set()

    def close(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def tone(freq):
    return lambda rate, n, start: (0.3 * np.sin(2 * np.pi * freq * (start + np.arange(n)) / rate)).astype(np.float32)


MIC = {"name": "USB Mic", "hostapi": 0, "max_input_channels": 1, "max_output_channels": 0,
       "default_samplerate": 48000.0}
SPEAKER = {"name": "Speakers", "hostapi": 0, "max_input_channels": 0, "max_output_channels": 2,
           "default_samplerate": 48000.0}
WEBCAM = {"name": "Webcam Mic", "hostapi": 0, "max_input_channels": 2, "max_output_channels": 0,
          "default_samplerate": 44100.0}


@pytest.fixture
def fake_sd(monkeypatch):
    def install(*args, **kw):
        sd = FakeSD(*args, **kw)
        monkeypatch.setattr(kws.audio.mic, "_sd", lambda: sd)
        return sd
    return install


def _take(mic, seconds):
    got, n = [], 0
    for b in mic:
        got.append(b)
        n += b.size
        if n >= seconds * 16000:
            return np.concatenate(got)


def _peak_hz(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spec) * 16000 / x.size


def test_refused_rates_fall_back_and_resample_to_16k(fake_sd):
    # claims 16 kHz as its own rate but refuses it, and 48 kHz too: recorded at 44.1 kHz
    sd = fake_sd([dict(MIC, default_samplerate=16000.0)], refuse={16000, 48000}, source=tone(1000),
                 speed=8.0)
    msgs = []
    with Microphone(MicConfig(), on_message=msgs.append) as mic:
        assert mic.samplerate == 44100
        x = _take(mic, 1.0)
    assert any("refused 16000 Hz" in m and "recording at 44100 Hz" in m for m in msgs), msgs
    assert abs(_peak_hz(x[4000:]) - 1000) < 5          # a 1 kHz tone stays 1 kHz at 16 kHz
    assert np.abs(x[4000:]).max() == pytest.approx(0.3, abs=0.03)
    sd.refuse = {16000, 48000, 44100, 32000, 22050, 96000, 8000}
    with pytest.raises(kws.audio.mic.DeviceRefused, match="could not be opened.*Invalid sample rate"):
        Microphone(MicConfig()).open()


def test_stereo_only_device_is_mixed_to_mono(fake_sd):
    sd = fake_sd([WEBCAM], source=tone(440), speed=8.0)

    def stereo_only(device=None, channels=None, dtype=None, samplerate=None):
        if channels != 2:
            raise FakeSD.PortAudioError("Invalid number of channels [PaErrorCode -9998]")
    sd.check_input_settings = stereo_only
    with Microphone() as mic:
        assert mic.channels == 2 and mic.samplerate == 44100
        assert abs(_peak_hz(_take(mic, 0.5)[2000:]) - 440) < 5


def test_record_for_enrollment_uses_the_same_path(fake_sd):
    fake_sd([SPEAKER, MIC], default=1, refuse={48000}, source=tone(300), speed=8.0)
    x = kws.audio.mic.record(0.5, device="usb")          # 48 kHz refused: recorded at 16 kHz directly
    assert x.dtype == np.float32 and x.size == 8000 and abs(_peak_hz(x) - 300) < 5


def test_device_selection_and_listing(fake_sd, capsys):
    fake_sd([SPEAKER, MIC, WEBCAM], default=1)
    assert kws.audio.mic.input_device("webcam")["name"] == "Webcam Mic"
    assert kws.audio.mic.input_device("2")["name"] == "Webcam Mic"
    assert kws.audio.mic.input_device()["name"] == "USB Mic"
    with pytest.raises(DeviceNotFound, match="matches 2 input devices"):
        kws.audio.mic.input_device("mic")
    with pytest.raises(DeviceNotFound, match="no input device with index 0"):
        kws.audio.mic.input_device(0)                      # the speakers have no input
    assert main(["listen", "--list-devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["*   1  USB Mic  (Fake API, 1 ch, 48000 Hz)", "    2  Webcam Mic  (Fake API, 2 ch, 44100 Hz)"]
    assert main(["listen", "--device", "headset"]) == 2
    err = capsys.readouterr().err
    assert "no input device matches 'headset'" in err and "Webcam Mic" in err and "Traceback" not in err


def test_no_portaudio_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)        # import fails, as without PortAudio
    assert main(["listen", "--list-devices"]) == 2
    assert "apt-get install libportaudio2" in capsys.readouterr().err
    assert main(["listen", "--device", "1"]) == 2
    assert "apt-get install libportaudio2" in capsys.readouterr().err


def test_device_gone_mid_stream_comes_back(fake_sd):
    sd = fake_sd([SPEAKER, MIC], default=1, source=tone(500), speed=4.0)
    msgs = []
    mic = Microphone(MicConfig(device=1, retry_s=0.05), on_message=msgs.append)
    got = 0
    with mic:
        for i, b in enumerate(mic):
            got += b.size
            if i == 5:
                sd.unplug("USB Mic")
                threading.Timer(0.3, sd.plug, args=(MIC,)).start()   # comes back as index 0
            if got > 2 * 16000:
                break
    assert mic.losses == 1 and sd.rescans >= 1
    assert any("'USB Mic' stopped (its audio stream ended)" in m for m in msgs), msgs
    assert any("'USB Mic' is back after" in m for m in msgs), msgs
    assert mic.info["index"] == 0                   # found again by name, at its new index
    assert "device lost 1 time(s)" in mic.summary()


def test_stalled_device_is_reopened(fake_sd):
    sd = fake_sd([MIC], source=tone(500), speed=4.0)
    msgs = []
    with Microphone(MicConfig(stall_s=0.3, retry_s=0.05), on_message=msgs.append) as mic:
        for i, b in enumerate(mic):
            if i == 3:
                sd.stalled = True
                threading.Timer(0.5, setattr, args=(sd, "stalled", False)).start()
            if mic.losses and i > 10:
                break
    assert any("no audio for 0.3 s" in m for m in msgs), msgs
    assert any("is back" in m for m in msgs), msgs


def test_overflow_counted_and_reported(fake_sd):
    # 40 blocks arrive at once into room for 10: 30 dropped, plus 3 flagged by the device
    fake_sd([dict(MIC, default_samplerate=16000.0)], speed=0, blocks=40, overflow_blocks={1, 2, 3})
    msgs = []
    mic = Microphone(MicConfig(queue_blocks=10, report_every_s=0), on_message=msgs.append)
    with mic:
        blocks = [b for _, b in zip(range(10), mic)]
    assert len(blocks) == 10 and mic.overflows == 33
    assert any("audio lost 33 time(s)" in m for m in msgs), msgs
    assert "33 overflow(s)" in mic.summary()


def test_device_slower_than_its_rate_is_reported(fake_sd):
    fake_sd([MIC], speed=0.5)                      # delivers half a second per second
    msgs = []
    with Microphone(MicConfig(report_every_s=0.5), on_message=msgs.append) as mic:
        for b in mic:
            if mic.short_s:
                break
    assert any("audio is lost before it reaches kws" in m for m in msgs), msgs
    assert "not delivered in time" in mic.summary()


def test_no_device_falls_back_to_sample_with_json_and_exec(fake_sd, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KWS_STORE", str(tmp_path / "store"))
    fake_sd([SPEAKER])                              # output only: nothing to record from
    log = tmp_path / "exec.log"
    cmd = (f"{sys.executable} -c \"import os; open(r'{log}', 'a').write("
           f"os.environ['KWS_KEYWORD'] + ' ' + os.environ['KWS_EVENT'] + chr(10))\"")
    assert main(["listen", "--no-realtime", "--json", "--exec", cmd]) == 0
    cap = capsys.readouterr()
    assert "no input device found" in cap.err and "bundled sample" in cap.err
    events = [json.loads(l) for l in cap.out.splitlines()]
    assert main(["detect"]) == 0                    # the same keywords offline
    offline = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [(e["keyword"], e["start"]) for e in events] == [(e["keyword"], e["start"]) for e in offline]
    for e in events:
        assert set(e) == {"keyword", "score", "threshold", "start", "end", "stream_time", "time"}
        assert e["end"] <= e["stream_time"] <= e["end"] + 1.0 and abs(e["time"] - time.time()) < 300
    ran = [l.split(" ", 1) for l in log.read_text().splitlines()]
    assert sorted(k for k, _ in ran) == sorted(e["keyword"] for e in events)
    assert all(json.loads(j)["keyword"] == k for k, j in ran)


# ---------------------------------------------------------------------------- real sound server
def _portaudio_reaches_pulse():
    try:
        import sounddevice as sd
    except (OSError, ImportError) as exc:
        pytest.skip(f"PortAudio not available ({exc}): apt-get install libportaudio2")
    names = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    if not any(n in ("pulse", "default", "pipewire") for n in names):
        pytest.skip(f"PortAudio does not reach the sound server (inputs: {names}); "
                    "apt-get install libasound2-plugins")


@pytest.fixture
def virtual_mic():
    if not shutil.which("paplay"):
        pytest.skip("paplay not found: apt-get install pulseaudio-utils (and start a sound server)")
    try:
        with kws.audio.mic.null_sink(f"kws_test_{os.getpid()}") as env:
            _portaudio_reaches_pulse()
            yield env
    except NoMicrophone as exc:
        pytest.skip(f"no sound server for the live test: {exc}")


class Listen:
    """`python -m kws listen --json` as a subprocess; stderr lines are collected as they come."""

    def __init__(self, env, *args):
        # Ctrl-C is what stop() sends: a suite started in the background inherits SIGINT ignored,
        # so the child gets the default disposition back (Python then turns it into KeyboardInterrupt)
        self.p = subprocess.Popen([sys.executable, "-m", "kws", "listen", "--json", *args], cwd=ROOT,
                                  env={**os.environ, **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.err, self.out = [], []
        self.reader = threading.Thread(target=lambda: self.err.extend(self.p.stderr), daemon=True)
        self.reader.start()
        self.out_reader = threading.Thread(target=lambda: self.out.extend(self.p.stdout), daemon=True)
        self.out_reader.start()

    def wait_for(self, text, timeout=60):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if any(text in l for l in self.err):
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.p.kill()
        raise AssertionError(f"kws listen never said {text!r}:\n" + "".join(self.err))

    def events(self):
        """The detections printed so far."""
        return [json.loads(l) for l in list(self.out)]

    def wait_heard(self, offline, timeout=15):
        """Wait until the detections printed so far hold ``offline``'s (_heard_all), at most
        ``timeout`` seconds (what is missing then is _assert_same_detections' to report)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout and self.p.poll() is None and not _heard_all(self.events(), offline):
            time.sleep(0.05)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=30)                 # a listen that ignores Ctrl-C fails here, never hangs
        self.out_reader.join(timeout=30)
        self.reader.join(timeout=30)
        return self.p.returncode, self.events(), "".join(self.err)


def _offline(path, env, *args):
    r = subprocess.run([sys.executable, "-m", "kws", "detect", str(path), *args], capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    return [json.loads(l) for l in r.stdout.splitlines()]


def _heard_all(live, offline):
    """Whether every offline detection is heard live at one common time shift (the moment playback
    began in the listener's stream), give or take 0.5 s."""
    def fits(shift):
        return all(any(l["keyword"] == o["keyword"] and abs(l["start"] - o["start"] - shift) <= 0.5
                       for l in live) for o in offline)
    shifts = [l["start"] - offline[0]["start"] for l in live if l["keyword"] == offline[0]["keyword"]]
    return any(fits(s) for s in shifts)


def _assert_same_detections(live, offline, err):
    """Every offline detection is heard live at one common time shift (the moment playback began
    in the listener's stream), give or take 0.5 s; a few extra live events are allowed."""
    assert offline, "the offline run found nothing to compare with"
    assert _heard_all(live, offline), f"live {live}\noffline {offline}\n{err}"
    assert len(live) <= 2 * len(offline), f"too many live events: {live}"


def test_listen_hears_sample_through_sound_server(virtual_mic, tmp_path):
    env = {**virtual_mic, "KWS_STORE": str(tmp_path)}          # an empty store: the demo keywords
    listen = Listen(env, "--no-view")
    offline = _offline(sample_recording(), env)
    listen.wait_for("listening on")
    subprocess.run(["paplay", "-d", virtual_mic["PULSE_SINK"], str(sample_recording())], check=True,
                   timeout=60)
    time.sleep(1.5)
    rc, live, err = listen.stop()
    assert rc == 0, err
    assert "stopped:" in err and "Traceback" not in err
    _assert_same_detections(live, offline, err)
    assert all(e["stream_time"] >= e["end"] for e in live)


@pytest.mark.skipif(not (shutil.which("pulseaudio") and shutil.which("paplay")),
                    reason="pulseaudio not installed (apt-get install pulseaudio pulseaudio-utils)")
def test_listen_survives_sound_server_restart(tmp_path):
    """A real fault: the sound server dies under `kws listen` and starts again."""
    run = tmp_path / "pulse"
    run.mkdir()
    demo_set(["jarvis"]).save(tmp_path / "s")
    env = {"PULSE_RUNTIME_PATH": str(run), "PULSE_STATE_PATH": str(run), "KWS_STORE": str(tmp_path / "s")}
    clean = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE")}

    def server():
        r = subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--load=module-native-protocol-unix",
                            "--load=module-null-sink sink_name=kws_restart", "--log-target=stderr"],
                           env={**clean, **env}, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            pytest.skip(f"could not start a private pulseaudio: {r.stderr[-300:]}")
        return int((run / "pid").read_text())

    # the sample's sentence "Jarvis, ..." (jarvis at 12.4 s) with 0.6 s of the pause before it
    cut = tmp_path / "jarvis.wav"
    from kws.audio.io import load_audio, write_wav

    write_wav(cut, load_audio(sample_recording())[int(11.84 * 16000):int(14.32 * 16000)])
    pid = server()
    listen = None
    try:
        listen = Listen({**clean, **env}, "--no-view")
        offline = _offline(cut, env)
        listen.wait_for("listening on")
        os.kill(pid, signal.SIGTERM)
        listen.wait_for("stopped (", timeout=15)
        time.sleep(1.0)
        pid = server()
        listen.wait_for("is back after", timeout=15)
        subprocess.run(["paplay", str(cut)], env={**clean, **env}, check=True, timeout=30)
        assert offline, "the offline run found nothing to compare with"
        listen.wait_heard(offline)
        rc, live, err = listen.stop()
        assert rc == 0 and "device lost 1 time(s)" in err, err
        _assert_same_detections(live, offline, err)
    finally:
        if listen is not None and listen.p.poll() is None:
            listen.p.kill()
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
