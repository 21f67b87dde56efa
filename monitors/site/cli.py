"""``funnelguard site build`` and ``funnelguard site serve``: the CLI adapter of the site.

``site build --out DIR`` writes the static site from the results store (``--store``, else
``$FUNNELGUARD_STORE``, else the project's ``store:``, else the default); ``--full`` rewrites
every page. ``site serve --out DIR [--port N]`` serves a built site on 127.0.0.1. Both return an
exit code (they are not checks). Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]

DEFAULT_OUT = ".funnelguard/site"
DEFAULT_PORT = 8000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``site build`` and ``site serve`` to the ``funnelguard`` command."""
    site = subparsers.add_parser("site", help="the results site: static HTML from the store",
                                 description='Build the static results site from the store (site build) or serve a built one on 127.0.0.1 (site serve).')
    sub = site.add_subparsers(dest="site_command", metavar="ACTION", parser_class=type(site))
    sub.required = True
    build = sub.add_parser("build", help="write the site from the results store",
                           description="Write the static site (index, run, dataset, evaluation "
                                       "and training pages) from the results store.")
    build.add_argument("--store", default=None, metavar="URL",
                       help="results store URL (default: $FUNNELGUARD_STORE, else the project's "
                            "`store:`, else sqlite:///.funnelguard/results.db)")
    build.add_argument("--project", default=None, metavar="PATH",
                       help="project file (for its `store:`)")
    build.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"site folder (default {DEFAULT_OUT})")
    build.add_argument("--full", action="store_true",
                       help="rewrite every page (default: only pages of new or changed runs)")
    build.add_argument("--trend-partitions", type=int, default=None, metavar="N",
                       help="newest partitions the trend charts cover (default 90)")
    build.set_defaults(handler=_build, command_name="site build")
    serve = sub.add_parser("serve", help="serve a built site on 127.0.0.1",
                           description="Serve a built site on 127.0.0.1 (Ctrl-C stops).")
    serve.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"site folder (default {DEFAULT_OUT})")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                       help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.set_defaults(handler=_serve, command_name="site serve")


def _build(args: argparse.Namespace) -> int:
    from funnelguard.cli import store_url_of
    from funnelguard.errors import EXIT_PASS, InputError
    from monitors.site.build import TREND_PARTITIONS, build_site

    if args.trend_partitions is not None and args.trend_partitions < 1:
        raise InputError(f"--trend-partitions: expected a positive number, found "
                         f"{args.trend_partitions}")
    report = build_site(store_url_of(args), args.out, full=args.full,
                        trend_partitions=args.trend_partitions or TREND_PARTITIONS)
    print(report.summary())
    return EXIT_PASS


def _serve(args: argparse.Namespace) -> int:
    from funnelguard.errors import EXIT_PASS, InputError
    from monitors.site.serve import make_server

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port: expected 0..65535, found {args.port}")
    server = make_server(args.out, args.port)
    host, port = server.server_address[:2]
    print(f"serving {args.out} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return EXIT_PASS
