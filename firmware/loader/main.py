# StringCare loader: the /main.py of every board since staged installs (docs/deploy.md).
# It never imports bundle code before checking it:
#
#   1. read /stringcare_active: the active bundle, then the previous one, each as
#      "b/<id> <SHA-256 of its MANIFEST>" (written only after the board checked the
#      manifest's Ed25519 signature at install, replaced whole by an atomic rename);
#   2. take the first bundle whose MANIFEST has that SHA-256 and whose every file
#      matches the MANIFEST's SHA-256 and size; run its stringcare_entry (the role's
#      firmware/<role>/main.py) with the bundle first on sys.path;
#   3. no valid bundle: drive the bleed, excitation, RS-485 driver-enable and relay
#      pins to their off level (low: loads off, bus free, relays released), print
#      why, and flash the "no firmware" LED pattern until Ctrl-C (USB: deploy again):
#      red and green together (amber on the bicolour LED) on 250 ms, off 250 ms - no
#      firmware pattern lights both at once (module_fw/ui.py).
#
# The bundle builder puts the board's safe pins into SAFE and shared/sha256.py (SHA-256
# in Python, for MicroPython images without hashlib) at the SHA256 line
# (tools/stringcare/bundle.py); the loader is itself part of the signed bundle and is
# replaced last, by a rename.
import os
import sys

SAFE = {}  # filled in per board by `stringcare bundle`
# SHA256: shared/sha256.py goes here (`stringcare bundle`)
_SHA_NAMES = ("Sha256", "sha256", "compress", "compress16", "compress32", "_compress_viper")


def _sha(path):
    try:
        import hashlib

        h = hashlib.sha256()
    except ImportError:
        new = globals().get("Sha256")  # the inlined shared/sha256.py
        if new is None:
            return None
        h = new()
    buf = bytearray(512)
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf if n == 512 else buf[:n])
    except OSError:
        return None
    return "".join("%02x" % x for x in h.digest())


def _check(folder, manifest_sha):
    """None when the bundle is intact, else what is wrong."""
    got = _sha(folder + "/MANIFEST")
    if got is None:
        return "no MANIFEST (or no hashlib)"
    if got != manifest_sha:
        return "MANIFEST changed"
    with open(folder + "/MANIFEST") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "file":
                path = folder + "/" + parts[3]
                try:
                    size = os.stat(path)[6]
                except OSError:
                    return parts[3] + " missing"
                if size != int(parts[2]) or _sha(path) != parts[1]:
                    return parts[3] + " damaged"
    return None


def _bundles():
    # The pointer, or the new one written aside when the switch was cut between
    # removing the old and renaming (FAT's rename is remove + rename; littlefs's is
    # atomic).  Only whole lines count: a cut write leaves none or a valid prefix.
    for name in ("stringcare_active", "stringcare_active.tmp"):
        try:
            with open(name) as f:
                text = f.read()
        except OSError:
            continue
        out = []
        for line in text.split("\n"):
            parts = line.split(" ")
            if len(parts) == 2 and len(parts[1]) == 64:
                out.append(parts)
        if out:
            return out
    return []


def _safe_pins():
    """Bleed and excitation off; returns a function setting the LEDs (bits: 1 red, 2 green)."""
    if SAFE.get("status_file"):  # virtual board: its HAL reports outputs in a file
        cfg = os.getenv("VBOARD_CONFIG") if hasattr(os, "getenv") else None

        def leds(bits):
            if cfg:
                with open(cfg + ".status.tmp", "w") as f:
                    f.write('{"led": %d, "duty": 0, "safe": "no valid firmware"}' % bits)
                os.rename(cfg + ".status.tmp", cfg + ".status.json")

        leds(0)
        return leds
    from machine import Pin

    for name in SAFE.get("off", ()):
        Pin(name, Pin.OUT, value=SAFE.get("off_level", 0))
    pins = [Pin(name, Pin.OUT, value=0) for name in SAFE.get("leds", ())]

    def leds(bits):
        for k in range(len(pins)):
            pins[k].value((bits >> k) & 1)

    return leds


def _no_firmware(why):
    leds = _safe_pins()
    print("stringcare: boot: NO VALID FIRMWARE (%s): bleed off; deploy again over USB" % why)
    import time

    bits = 3
    while True:  # Ctrl-C (mpremote, deploy) ends it: the REPL takes over
        leds(bits)
        bits ^= 3
        time.sleep_ms(250)


def main():
    failed = []
    for folder, manifest_sha in _bundles():
        why = _check(folder, manifest_sha)
        if why is not None:
            failed.append("%s: %s" % (folder, why))
            continue
        note = ("; skipped " + ", ".join(failed)) if failed else ""
        print("stringcare: boot: bundle %s%s" % (folder, note))
        g = globals()
        for name in _SHA_NAMES + ("_K", "_W", "_W32", "_IV"):  # RAM for the firmware
            if name in g:
                del g[name]
        import gc

        gc.collect()
        sys.path.insert(0, folder)
        try:
            __import__("stringcare_entry")
        except KeyboardInterrupt:
            raise
        except Exception:
            _safe_pins()
            raise
        return
    _no_firmware("; ".join(failed) or "no bundle installed")


main()
# end of the StringCare loader
