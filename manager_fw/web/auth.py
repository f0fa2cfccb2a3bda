# Operators of the web interface: accounts, password hashes, sessions, CSRF tokens and
# login rate limiting (docs/operator.md, "Security").  The same code on the Pico W
# (MicroPython) and the Linux manager (CPython); no I/O but the users file through a
# `files` object (manager_fw.config.OsFiles: read/write/rename/remove) and no clock of
# its own: every call takes now_s.
#
# - No default password: while the users file holds no account, the manager prints a
#   one-time setup code on its console (board) or stderr (Linux); creating the first
#   admin needs that code.
# - Passwords: PBKDF2-HMAC-SHA256, 16-byte random salt, an iteration count per board
#   class (ITERATIONS) stored with each hash, so a hash made on a PC still verifies on a
#   board and the count can be raised later.
# - Sessions: a random 128-bit token in an HttpOnly, SameSite=Strict cookie; each has its
#   own CSRF token that every state change must carry; at most max_sessions live, the
#   oldest is dropped for a new one; idle ones expire.
# - Login rate limiting per client address (a few free tries, then a lock-out that
#   doubles), and a global cap so a flood of guesses cannot keep the CPU hashing.

import hashlib
import json
import os

from shared.compat import const

ROLE_VIEWER = "viewer"
ROLE_ADMIN = "admin"
ROLES = (ROLE_VIEWER, ROLE_ADMIN)

# PBKDF2 iterations by board class, chosen so one login costs about 0.1-0.5 s there
# (measured: tools/bench/bench_web.py, docs/benchmarks.md "web.login_ms.*").
ITERATIONS = {
    "cpython": 200000,  # hashlib.pbkdf2_hmac (OpenSSL)
    "unix": 4000,  # MicroPython unix port, pure-Python HMAC
    "rp2040": 1000,  # Pico W: pure-Python HMAC at 125 MHz, yields to the bus loop
}
SALT_BYTES = const(16)
HASH_CHUNK = const(50)  # iterations between yields to the event loop
BOARD_CHUNK = const(10)  # on a board: about 11 ms of an RP2040 between two bus turns

SESSION_IDLE_S = const(1800)  # 30 min without a request ends a session
SESSION_MAX_S = const(43200)  # 12 h at most
FREE_TRIES = const(5)  # failed logins from one address before the lock-out starts
LOCK_FIRST_S = const(30)
LOCK_MAX_S = const(900)
TRACKED_ADDRESSES = const(32)
GLOBAL_FAILS_PER_MIN = const(30)  # all addresses together; then every login waits

USERNAME_MAX = const(32)
# Deleted accounts whose numbers the event log may still name (oldest forgotten first);
# numbers are never given out again, so an old event never names a newer account.
FORMER_KEPT = const(32)
PASSWORD_MIN = const(10)
PASSWORD_MAX = const(128)


class AuthError(Exception):
    """A refusal with the text the operator sees (what is wrong, what to do)."""


def _hex(b) -> str:
    return "".join("%02x" % x for x in b)


def _unhex(s: str) -> bytes:
    return bytes(int(s[i : i + 2], 16) for i in range(0, len(s), 2))


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def _xor_into(acc: bytearray, u) -> None:
    for i in range(len(acc)):
        acc[i] ^= u[i]


def pbkdf2_steps(password: bytes, salt: bytes, iterations: int, chunk: int = HASH_CHUNK):
    """PBKDF2-HMAC-SHA256 with a 32-byte result (RFC 8018), as a generator: it yields
    None every `chunk` iterations (the caller gives the event loop a turn) and the
    derived key last.  Pure Python over hashlib.sha256 (MicroPython has no hmac)."""
    key = password
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)

    def hmac(msg):
        inner = hashlib.sha256(ipad + msg).digest()
        return hashlib.sha256(opad + inner).digest()

    u = hmac(salt + b"\x00\x00\x00\x01")
    acc = bytearray(u)
    done = 1
    while done < iterations:
        u = hmac(u)
        _xor_into(acc, u)
        done += 1
        if done % chunk == 0:
            yield None
    yield bytes(acc)


def pbkdf2(password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 in one call: OpenSSL's on CPython, the pure one elsewhere."""
    fast = getattr(hashlib, "pbkdf2_hmac", None)
    if fast is not None:
        return fast("sha256", password, salt, iterations)
    out = b""
    for step in pbkdf2_steps(password, salt, iterations):
        if step is not None:
            out = step
    return out


def make_hash(password: str, iterations: int, salt=None) -> str:
    if salt is None:
        salt = random_bytes(SALT_BYTES)
    dk = pbkdf2(password.encode(), salt, iterations)
    return "pbkdf2-sha256$%d$%s$%s" % (iterations, _hex(salt), _hex(dk))


def _parse_hash(stored: str):
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2-sha256":
        raise AuthError("users file: an unknown password hash format")
    return int(parts[1]), _unhex(parts[2]), _unhex(parts[3])


def _same(a: bytes, b: bytes) -> bool:
    """Compare in time independent of where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def check_password(password: str, stored: str) -> bool:
    iterations, salt, want = _parse_hash(stored)
    return _same(pbkdf2(password.encode(), salt, iterations), want)


def check_username(name: str) -> str:
    name = name.strip()
    if not name or len(name) > USERNAME_MAX:
        raise AuthError("user name: give 1 to %d characters" % USERNAME_MAX)
    for c in name:
        if not (c.isalpha() or c.isdigit() or c in "._-"):
            raise AuthError("user name %r: use letters, digits, '.', '_' or '-' only" % name)
    return name


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise AuthError("password: at least %d characters, please" % PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise AuthError("password: at most %d characters" % PASSWORD_MAX)


class Session:
    __slots__ = ("token", "user", "role", "csrf", "created_s", "seen_s")

    def __init__(self, token, user, role, csrf, now_s):
        self.token = token
        self.user = user
        self.role = role
        self.csrf = csrf
        self.created_s = now_s
        self.seen_s = now_s


class Auth:
    """Accounts (in the users file), sessions (in memory: a restart logs everyone out)
    and the login limiter."""

    def __init__(
        self,
        files,
        path: str = "web_users.json",
        iterations: int = 1000,
        max_sessions: int = 8,
    ) -> None:
        self.files = files
        self.path = path
        self.iterations = iterations
        self.max_sessions = max_sessions
        self.users: dict = {}  # name -> {"role": ..., "hash": ..., "number": n}
        self.former: dict = {}  # number (as text) -> name, of deleted accounts
        self.next_number = 1  # the next account's number (never reused)
        self.sessions: dict = {}  # token -> Session
        self.failures: dict = {}  # address -> [count, locked_until_s]
        self.global_fails: list = []  # times of recent failures, all addresses
        self.setup_code: str | None = None
        self.problem: str | None = None  # the users file could not be read: why
        self._load()

    # -- the users file ------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = self.files.read(self.path)
        except Exception as e:  # noqa: BLE001 - EIO, EACCES: reported, never fatal
            raw = None
            self.problem = "%s: cannot be read (%s)" % (self.path, e)
        if raw is None:
            self.users = {}
        else:
            if isinstance(raw, (bytes, bytearray)):
                raw = bytes(raw).decode()
            try:
                obj = json.loads(raw)
                users = obj["users"]
                for name in users:
                    u = users[name]
                    if u["role"] not in ROLES:
                        raise ValueError("role %r" % u["role"])
                    _parse_hash(u["hash"])
                former = obj.get("former", {})
                for k in former:
                    if int(k) < 1 or not isinstance(former[k], str):
                        raise ValueError("former account %r" % k)
                nxt = int(obj.get("next", 1))
                self.users = users
                self.former = former
                self.next_number = nxt
            except Exception as e:  # noqa: BLE001 - a damaged file locks the web out
                self.users = {}
                self.problem = (
                    "%s is damaged (%s): the web interface accepts no login; remove the "
                    "file to create an admin again with a setup code (docs/operator.md, "
                    "'Locked out')" % (self.path, e)
                )
                return
        if not self.users:
            self.setup_code = self._new_setup_code()

    def _save(self) -> None:
        text = json.dumps({"users": self.users, "former": self.former, "next": self.next_number})
        self.files.write(self.path + ".tmp", text)
        self.files.rename(self.path + ".tmp", self.path)

    def _new_setup_code(self) -> str:
        n = 0
        for b in random_bytes(5):
            n = (n << 8) | b
        return "%08d" % (n % 100000000)

    def needs_setup(self) -> bool:
        return self.setup_code is not None

    def user_number(self, name: str) -> int:
        u = self.users.get(name)
        return u["number"] if u else 0

    def user_by_number(self, number: int):
        """Whose number it is, a deleted account's too (the event log names who did
        something after the account is gone); None when nobody's (or long forgotten)."""
        for name in self.users:
            if self.users[name]["number"] == number:
                return name
        return self.former.get(str(number))

    def _add(self, name: str, role: str, password: str, hashed=None) -> None:
        # never a number given out before, not even one of a deleted account (a file
        # from before "next" was kept: after the highest number it names)
        number = self.next_number
        for k in self.former:
            number = max(number, int(k) + 1)
        for other in self.users.values():
            number = max(number, other["number"] + 1)
        if number >= 0x8000:  # the event log's 15 bits (actions.FROM_CONTROL is the 16th)
            raise AuthError("no account numbers left: the users file has given out 32767")
        self.next_number = number + 1
        self.users[name] = {
            "role": role,
            "hash": hashed or make_hash(password, self.iterations),
            "number": number,
        }
        self._save()

    def create_first_admin(
        self, code: str, name: str, password: str, address: str, now_s, hashed=None
    ):
        """The first start: the setup code from the console makes the first admin."""
        if self.setup_code is None:
            raise AuthError("the admin account exists already: log in")
        self._limit(address, now_s)
        if not _same(code.strip().encode(), self.setup_code.encode()):
            self._failed(address, now_s)
            raise AuthError(
                "wrong setup code: it is printed on the manager's console (the Pico W's USB "
                "serial, or the Linux manager's log) when no account exists"
            )
        name = check_username(name)
        check_new_password(password)
        self._add(name, ROLE_ADMIN, password, hashed)
        self.setup_code = None
        return name

    def add_user(self, name: str, role: str, password: str, hashed=None) -> str:
        name = check_username(name)
        if role not in ROLES:
            raise AuthError("role %r: choose viewer or admin" % role)
        if name in self.users:
            raise AuthError("user %s exists already" % name)
        check_new_password(password)
        self._add(name, role, password, hashed)
        return name

    def delete_user(self, name: str, by: str) -> int:
        """An admin removes an account (not their own, not the last admin): its number,
        for the event log.  Its sessions end with it."""
        u = self.users.get(name)
        if u is None:
            raise AuthError("user %s: no such user" % name)
        if name == by:
            raise AuthError("you cannot delete your own account: another admin can")
        if u["role"] == ROLE_ADMIN:
            admins = [n for n in self.users if self.users[n]["role"] == ROLE_ADMIN]
            if len(admins) < 2:
                raise AuthError("%s is the last admin: add another admin first" % name)
        number = u["number"]
        del self.users[name]
        self.former[str(number)] = name
        while len(self.former) > FORMER_KEPT:
            del self.former[str(min(int(k) for k in self.former))]
        self._save()
        for t in [t for t in self.sessions if self.sessions[t].user == name]:
            del self.sessions[t]
        return number

    def set_password(self, name: str, password: str, keep_token=None, hashed=None) -> None:
        """A new password for an account whose old one was checked by the caller; its
        other sessions end (keep_token: the session that changed it stays)."""
        check_new_password(password)
        self.users[name]["hash"] = hashed or make_hash(password, self.iterations)
        self._save()
        for t in [t for t in self.sessions if self.sessions[t].user == name]:
            if t != keep_token:
                del self.sessions[t]

    def user_list(self) -> list:
        return sorted([n, self.users[n]["role"], self.users[n]["number"]] for n in self.users)

    # -- login and sessions ----------------------------------------------------------

    def _limit(self, address: str, now_s: int) -> None:
        rec = self.failures.get(address)
        if rec is not None and now_s < rec[1]:
            raise AuthError(
                "too many failed logins from %s: try again in %d s" % (address, rec[1] - now_s)
            )
        recent = [t for t in self.global_fails if now_s - t < 60]
        self.global_fails = recent
        if len(recent) >= GLOBAL_FAILS_PER_MIN:
            raise AuthError("too many failed logins on this manager: try again in a minute")

    def _failed(self, address: str, now_s: int) -> None:
        rec = self.failures.get(address)
        if rec is None:
            if len(self.failures) >= TRACKED_ADDRESSES:
                oldest = None
                for a in self.failures:
                    if oldest is None or self.failures[a][1] < self.failures[oldest][1]:
                        oldest = a
                del self.failures[oldest]
            rec = [0, 0]
            self.failures[address] = rec
        rec[0] += 1
        if rec[0] >= FREE_TRIES:
            lock = LOCK_FIRST_S << min(rec[0] - FREE_TRIES, 5)
            rec[1] = now_s + min(lock, LOCK_MAX_S)
        self.global_fails.append(now_s)

    def login_check(self, name: str, address: str, now_s: int):
        """Before the (slow) hash: refuse a locked-out address; the stored hash or None."""
        self._limit(address, now_s)
        u = self.users.get(name)
        return u["hash"] if u else None

    def login_finish(self, name: str, ok: bool, address: str, now_s: int) -> Session:
        if not ok or name not in self.users:
            self._failed(address, now_s)
            raise AuthError("wrong user name or password")
        self.failures.pop(address, None)
        return self._new_session(name, now_s)

    def login(self, name: str, password: str, address: str, now_s: int) -> Session:
        """Log in in one call (the hash runs at once; the board's server uses
        login_check + pbkdf2_steps + login_finish to yield while hashing)."""
        stored = self.login_check(name, address, now_s)
        ok = False
        if stored is not None:
            ok = check_password(password, stored)
        else:  # the same work for an unknown name: no timing hint which names exist
            make_hash(password, self.iterations, b"\x00" * SALT_BYTES)
        return self.login_finish(name, ok, address, now_s)

    def _new_session(self, name: str, now_s: int) -> Session:
        while len(self.sessions) >= self.max_sessions:  # the oldest makes room
            oldest = None  # (MicroPython's dict keeps no insertion order)
            for t in self.sessions:
                if oldest is None or self.sessions[t].created_s < self.sessions[oldest].created_s:
                    oldest = t
            del self.sessions[oldest]
        token = _hex(random_bytes(16))
        s = Session(token, name, self.users[name]["role"], _hex(random_bytes(16)), now_s)
        self.sessions[token] = s
        return s

    def session(self, token, now_s: int):
        """The live session of a cookie's token, or None (unknown or expired)."""
        if not token:
            return None
        s = self.sessions.get(token)
        if s is None:
            return None
        if now_s - s.seen_s > SESSION_IDLE_S or now_s - s.created_s > SESSION_MAX_S:
            del self.sessions[token]
            return None
        if s.user not in self.users:
            del self.sessions[token]
            return None
        s.seen_s = now_s
        return s

    def logout(self, token) -> None:
        self.sessions.pop(token, None)


def csrf_ok(session, given) -> bool:
    if session is None or not given:
        return False
    return _same(given.encode(), session.csrf.encode())
