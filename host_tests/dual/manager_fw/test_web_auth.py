# The web interface's accounts and sessions (manager_fw/web/auth.py), the same under
# CPython and MicroPython: PBKDF2-HMAC-SHA256 against RFC test vectors, no account
# without the console's setup code, roles, the login lock-out, session expiry, CSRF.
from dualtest import raises

from manager_fw.web import auth as au


class Files:
    def __init__(self):
        self.files = {}

    def read(self, path):
        return self.files.get(path)

    def write(self, path, text):
        self.files[path] = text

    def rename(self, old, new):
        self.files[new] = self.files.pop(old)

    def remove(self, path):
        self.files.pop(path, None)


def _hex(b):
    return "".join("%02x" % x for x in b)


def last(gen):
    out = None
    for step in gen:
        out = step
    return out


def test_pbkdf2_matches_the_published_vectors_in_steps_and_at_once():
    # PBKDF2-HMAC-SHA256, P="password", S="salt", dkLen=32 (RFC 7914 section 11 style
    # vectors, as published for SHA-256)
    want1 = "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
    want2 = "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
    assert _hex(last(au.pbkdf2_steps(b"password", b"salt", 1))) == want1
    assert _hex(last(au.pbkdf2_steps(b"password", b"salt", 2))) == want2
    assert _hex(au.pbkdf2(b"password", b"salt", 2)) == want2
    # the stepped one yields every `chunk` iterations, then the key
    steps = list(au.pbkdf2_steps(b"pw", b"s" * 16, 120, chunk=50))
    assert steps[:2] == [None, None] and len(steps) == 3
    assert steps[-1] == au.pbkdf2(b"pw", b"s" * 16, 120)
    # a key longer than the block is hashed first (RFC 2104)
    long_key = b"k" * 100
    assert last(au.pbkdf2_steps(long_key, b"salt", 3)) == au.pbkdf2(long_key, b"salt", 3)


def test_no_account_until_the_setup_code_from_the_console_is_given():
    f = Files()
    a = au.Auth(f, iterations=10)
    assert a.needs_setup() and len(a.setup_code) == 8
    code = a.setup_code
    e = raises(au.AuthError, a.create_first_admin, "0" * 9, "admin", "long password 1", "ip", 0)
    assert "wrong setup code" in str(e)
    e = raises(au.AuthError, a.create_first_admin, code, "admin", "short", "ip", 0)
    assert "at least 10 characters" in str(e)
    assert a.create_first_admin(code, "admin", "long password 1", "ip", 0) == "admin"
    assert not a.needs_setup()
    e = raises(au.AuthError, a.create_first_admin, code, "x", "long password 1", "ip", 0)
    assert "exists already" in str(e)
    # the file holds a salted hash, never the password; a restart keeps the account
    text = f.files["web_users.json"]
    assert "long password 1" not in text and "pbkdf2-sha256$10$" in text
    b = au.Auth(f, iterations=10)
    assert not b.needs_setup()
    s = b.login("admin", "long password 1", "ip", 5)
    assert s.role == au.ROLE_ADMIN and len(s.token) == 32 and len(s.csrf) == 32


def test_two_accounts_get_different_salts():
    a = au.Auth(Files(), iterations=10)
    a.create_first_admin(a.setup_code, "admin", "same password!", "ip", 0)
    a.add_user("viewer", au.ROLE_VIEWER, "same password!")
    assert a.users["admin"]["hash"] != a.users["viewer"]["hash"]
    assert a.user_number("admin") == 1 and a.user_number("viewer") == 2
    assert a.user_by_number(2) == "viewer"
    e = raises(au.AuthError, a.add_user, "bad name!", au.ROLE_VIEWER, "same password!")
    assert "letters, digits" in str(e)
    e = raises(au.AuthError, a.add_user, "other", "root", "same password!")
    assert "viewer or admin" in str(e)


def test_a_deleted_accounts_number_still_names_it_and_is_never_given_again():
    f = Files()
    a = au.Auth(f, iterations=10)
    a.create_first_admin(a.setup_code, "admin", "same password!", "ip", 0)
    a.add_user("watcher", au.ROLE_VIEWER, "same password!")
    assert a.delete_user("watcher", "admin") == 2
    # an event written by watcher before the deletion still says who, after a restart too
    assert a.user_by_number(2) == "watcher"
    b = au.Auth(f, iterations=10)
    assert b.user_by_number(2) == "watcher" and b.user_number("watcher") == 0
    # a new account (even with the same name) gets a number nobody had
    b.add_user("watcher", au.ROLE_VIEWER, "same password!")
    assert b.user_number("watcher") == 3 and b.user_by_number(2) == "watcher"
    b.delete_user("watcher", "admin")
    b.add_user("other", au.ROLE_VIEWER, "same password!")
    assert b.user_number("other") == 4 and b.user_by_number(3) == "watcher"
    # only the most recent deleted accounts are remembered: the log then says "user #n"
    for i in range(au.FORMER_KEPT + 2):
        b.add_user("u%d" % i, au.ROLE_VIEWER, "same password!")
        b.delete_user("u%d" % i, "admin")
    assert len(b.former) == au.FORMER_KEPT
    assert b.user_by_number(2) is None and b.user_by_number(4) == "other"
    # a damaged record of former accounts is reported like any damage
    f.files["web_users.json"] = f.files["web_users.json"].replace(
        '"former": {', '"former": {"0": 5, '
    )
    c = au.Auth(f, iterations=10)
    assert c.problem and "former account" in c.problem and not c.users


def test_failed_logins_lock_the_address_out_then_it_doubles():
    a = au.Auth(Files(), iterations=10)
    a.create_first_admin(a.setup_code, "admin", "the password 1", "ip", 0)
    for _ in range(au.FREE_TRIES):
        raises(au.AuthError, a.login, "admin", "wrong password", "10.0.0.9", 100)
    e = raises(au.AuthError, a.login, "admin", "the password 1", "10.0.0.9", 101)
    assert "too many failed logins from 10.0.0.9: try again in 29 s" in str(e)
    # another address is not locked out; the locked one is again after the wait
    assert a.login("admin", "the password 1", "10.0.0.7", 101).user == "admin"
    raises(au.AuthError, a.login, "admin", "wrong password", "10.0.0.9", 130)
    e = raises(au.AuthError, a.login, "admin", "the password 1", "10.0.0.9", 131)
    assert "try again in 59 s" in str(e)
    # an unknown user name fails the same way (no hint which names exist)
    e = raises(au.AuthError, a.login, "nobody", "the password 1", "10.0.0.8", 200)
    assert str(e) == "wrong user name or password"


def test_sessions_expire_and_are_bounded_and_csrf_must_match():
    a = au.Auth(Files(), iterations=10, max_sessions=2)
    a.create_first_admin(a.setup_code, "admin", "the password 1", "ip", 0)
    s1 = a.login("admin", "the password 1", "ip", 0)
    assert a.session(s1.token, au.SESSION_IDLE_S) is s1
    assert a.session(s1.token, 2 * au.SESSION_IDLE_S + 1) is None  # idle too long
    s2 = a.login("admin", "the password 1", "ip", 10)
    s3 = a.login("admin", "the password 1", "ip", 11)
    s4 = a.login("admin", "the password 1", "ip", 12)
    assert a.session(s2.token, 13) is None  # the oldest made room
    assert a.session(s3.token, 13) is s3 and a.session(s4.token, 13) is s4
    assert au.csrf_ok(s3, s3.csrf)
    assert not au.csrf_ok(s3, s4.csrf) and not au.csrf_ok(s3, "") and not au.csrf_ok(s3, None)
    assert not au.csrf_ok(None, s3.csrf)
    a.logout(s3.token)
    assert a.session(s3.token, 14) is None
    assert a.session("", 14) is None and a.session(None, 14) is None


def test_a_damaged_users_file_locks_the_web_out_and_says_how_to_recover():
    f = Files()
    f.files["web_users.json"] = "{not json"
    a = au.Auth(f, iterations=10)
    assert not a.needs_setup() and a.users == {}
    assert "damaged" in a.problem and "Locked out" in a.problem
    raises(au.AuthError, a.login, "admin", "whatever pass", "ip", 0)
