"""funnelguard core: the shared result shape, errors, warehouse conventions, simulator and CLI.

Everything a check produces is a :class:`~funnelguard.findings.Finding`; every command returns a
:class:`~funnelguard.findings.RunResult` that the CLI (the edge) turns into JSON, a stored run and
an exit code.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
