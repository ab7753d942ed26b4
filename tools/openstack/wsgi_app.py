"""gunicorn's entry point for every OpenStack API: `wsgi_app:application`.

gunicorn leaves its own arguments in `sys.argv`, and the services parse `sys.argv` with
oslo.config (Keystone then fails on gunicorn's flags). So the argument list is reset to the
service's own before its WSGI module is imported: OSK8S_WSGI_PROG (the program name),
OSK8S_WSGI_CONFIG (config files, ':'-separated) and OSK8S_WSGI_MODULE (the module that
builds `application`).
"""

import importlib
import os
import sys

_files = [f for f in os.environ["OSK8S_WSGI_CONFIG"].split(":") if f]
sys.argv = [os.environ["OSK8S_WSGI_PROG"]] + [arg for f in _files for arg in ("--config-file", f)]

application = importlib.import_module(os.environ["OSK8S_WSGI_MODULE"]).application
