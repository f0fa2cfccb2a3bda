# The board shells, one folder per board (boards/<board>/hal.py).  What every role's
# entry (firmware/<role>/main.py) does first: the board's settings, then its shell.


def settings() -> dict:
    """The settings `stringcare deploy` wrote (stringcare_settings.py); {} without."""
    try:
        import stringcare_settings  # type: ignore[import-not-found]  # on the board only

        return stringcare_settings.SETTINGS
    except ImportError:
        return {}


def shell(board: dict, settings: dict, factory: str = "make_hal"):
    """This board's shell: factory(board, settings) of boards/<board name>/hal.py."""
    module = __import__("boards.%s.hal" % board["name"], None, None, (factory,))
    return getattr(module, factory)(board, settings)
