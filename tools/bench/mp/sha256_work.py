# Workloads for tools/bench/bench_sha256.py on the emulated Cortex-M0 (from the ROMFS
# image, as frozen code on a board): shared/sha256.py, the SHA-256 of MicroPython
# images without hashlib, and the module's MAC verify on it.  mark() as in m0_work.py.
import gc

import micropython

from shared import auth
from shared import protocol as p
from shared import sha256 as s


@micropython.asm_thumb
def mark():
    data(2, 0x46DB)  # noqa: F821 - the inline assembler's directive


def empty():
    mark()
    mark()


def blocks():
    """One 64-byte block through each block function (python, viper)."""
    st = s.Sha256()._h
    blk = bytes(range(64))
    for f in (s.compress16, s.compress32):
        gc.collect()
        mark()
        f(st, blk, 0)
        mark()


def _set_target(key):
    from shared import protocol_layouts as lay

    frame = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 1, {
        "first": 1, "last": 64, "target_10uv": 1360000, "flags": 1, "timeout_s": 30},
        auth.Signer(key))  # fmt: skip
    d = p.Deframer()
    d.feed(frame, 0, len(frame))
    return d.poll()


def mac_verify():
    """auth.check_request of an authenticated SET_TARGET: hashlib, then shared/sha256;
    prints the bytes the second allocated."""
    key = b"StringCare-test!"
    frame = _set_target(key)
    for pure in (False, True):
        mac = auth.Mac(key, pure=pure)
        auth.check_request(mac, frame, 0, 0)  # warm
        gc.collect()
        before = gc.mem_alloc()
        mark()
        ok = auth.check_request(mac, frame, 0, 0)
        mark()
        grew = gc.mem_alloc() - before
        if ok != 1:
            raise SystemExit("the MAC did not verify")
    print("@@ALLOC", grew)


def bundle_hash(nbytes):
    """SHA-256 of nbytes in 512-byte pieces as fwstore.file_sha256 reads a file."""
    buf = bytearray(512)
    h = s.Sha256()
    gc.collect()
    mark()
    for _ in range(nbytes // 512):
        h.update(buf)
    h.update(buf[: nbytes % 512])
    h.digest()
    mark()
