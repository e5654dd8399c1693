"""A pytest plugin: Ctrl-C stops the whole suite, also inside a Lightning ``fit``.

Lightning catches ``KeyboardInterrupt`` inside ``fit``, ignores further SIGINTs and calls
``sys.exit(1)``; pytest records that ``SystemExit`` as one failed test and carries on with the
next, so an interrupted suite runs to its end. Here such an exit becomes the interrupt it was
(SIGINT handling restored), and pytest stops the session.
"""

import signal

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    except SystemExit as exit:
        if isinstance(exit.__context__, KeyboardInterrupt):  # Lightning's sys.exit(1) while handling Ctrl-C
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from exit
        raise
