# StringCare manager: the entry a manager board runs at boot (/main.py).  The bundle's
# stringcare_bundle.py says which board this is; its shell is boards/<board>/hal.py,
# the loop manager_fw/main.py; the site configuration is /site.json
# (docs/manager.md).
import stringcare_bundle as bundle

try:
    import stringcare_settings

    settings = stringcare_settings.SETTINGS
except ImportError:
    settings = {}

from manager_fw import main as shell

hal_module = __import__("boards.%s.hal" % bundle.BOARD["name"], None, None, ("make_hal",))
shell.run(hal_module.make_hal(bundle.BOARD, settings))
