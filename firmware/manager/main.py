# StringCare manager: the entry a manager board runs at boot (/main.py).  The bundle's
# stringcare_bundle.py says which board this is; its shell is boards/<board>/hal.py,
# the loop manager_fw/main.py; the site configuration is /site.json
# (docs/manager.md).  With settings["web_port"] (stringcare_settings.py, docs/operator.md)
# the loop runs as an asyncio task beside the operator's web interface
# (manager_fw/web/board.py); without it, alone.
import stringcare_bundle as bundle

import boards

settings = boards.settings()
hal = boards.shell(bundle.BOARD, settings)
if settings.get("web_port"):
    from manager_fw.web import board as web

    web.serve(hal, settings)
else:
    from manager_fw import main as shell

    shell.run(hal)
