"""``funnelguard alerts flush|retry|mute|unmute|list|preview``: the outbox and alert state from
the shell.

``flush`` exits 0 when everything due was delivered, 1 when Slack rejected a message (a 4xx
other than 408/429: a failing ``alert_delivery`` finding naming the connection and the status,
stored and printed like any check's), 3 while messages wait for Slack (unreachable, 5xx, 429:
the DAG retries), 2 for a missing or malformed Slack connection. ``retry --id N | --all-failed``
puts rejected rows back in the outbox; ``preview`` renders what the next flush would post and
changes nothing; ``mute``/``unmute``/``list``/``retry``/``preview`` exit 0, or 2 for an unknown
fingerprint, group or outbox id, or a bad duration. Nothing heavy is imported until a handler
runs.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, metavar="URL",
                        help="results store URL (default: $FUNNELGUARD_STORE or "
                             "sqlite:///.funnelguard/results.db)")


def register(subparsers) -> None:
    """Add ``alerts`` and its actions to the ``funnelguard`` parser."""
    alerts = subparsers.add_parser(
        "alerts", help="Slack alerts: deliver the outbox, retry, mute, list, preview",
        description="Slack alerts queued in the results store: deliver, retry, mute, list, "
                    "preview.")
    actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION")
    actions.required = True

    flush = actions.add_parser(
        "flush", help="deliver pending alerts to Slack (exit 3 if some must wait for Slack)")
    _store_flag(flush)
    flush.add_argument("--slack-conn", dest="slack_conn", default="funnelguard_slack",
                       metavar="ID", help="Airflow connection whose password is the webhook URL "
                                          "(default funnelguard_slack; AIRFLOW_CONN_<ID> works)")
    flush.add_argument("--json", dest="json_out", default=None, metavar="OUT",
                       help="write the delivery report (alert_delivery findings) here")
    flush.set_defaults(handler=_flush, command_name="alerts flush")

    retry = actions.add_parser(
        "retry", help="re-queue alerts Slack rejected, once the connection is fixed",
        description="Put alerts Slack rejected (4xx; `alerts list` shows them under REJECTED BY "
                    "SLACK) back in the outbox; the next `alerts flush` posts them.")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="ids", type=int, action="append", metavar="N",
                       help="the outbox id (`alert #N`); repeat the flag for several")
    which.add_argument("--all-failed", action="store_true", help="every rejected alert")
    _store_flag(retry)
    retry.set_defaults(handler=_retry, command_name="alerts retry")

    mute = actions.add_parser(
        "mute", help="stop alerting fingerprints (or a feature's, --group) for a while",
        description="Mute fingerprints, or with --group DATASET|FEATURE every open fingerprint "
                    "of a feature (a message's 'mute all' hint), for a while.")
    mute.add_argument("fingerprints", nargs="*", metavar="FINGERPRINT",
                      help="check|dataset|environment|feature|task|segment, as `list` prints it")
    _group_flag(mute, "every open fingerprint of this dataset and feature")
    mute.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                      help="how long: 30m, 24h, 7d, 1w")
    mute.add_argument("--reason", required=True, metavar="TEXT", help="why (shown in `list`)")
    _store_flag(mute)
    mute.set_defaults(handler=_mute, command_name="alerts mute")

    unmute = actions.add_parser("unmute", help="lift mutes")
    unmute.add_argument("fingerprints", nargs="*", metavar="FINGERPRINT")
    _group_flag(unmute, "every muted fingerprint of this dataset and feature")
    _store_flag(unmute)
    unmute.set_defaults(handler=_unmute, command_name="alerts unmute")

    listing = actions.add_parser("list", help="open, muted and pending alerts")
    listing.add_argument("--json", dest="as_json", action="store_true",
                         help="print the listing as JSON on stdout")
    _store_flag(listing)
    listing.set_defaults(handler=_list, command_name="alerts list")

    shown = actions.add_parser(
        "preview", help="render the queued alerts as the next flush would, without sending",
        description="Render the Block Kit messages waiting in the outbox (grouped, muted "
                    "findings left out) without sending them: no row changes.")
    shown.add_argument("--json", dest="as_json", action="store_true",
                       help="print the messages (Block Kit bodies) as JSON on stdout")
    _store_flag(shown)
    shown.set_defaults(handler=_preview, command_name="alerts preview")


def _group_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--group", dest="groups", action="append", default=[],
                        metavar="DATASET|FEATURE", help=f"{what} (repeat for several)")


def _store_url(args: argparse.Namespace) -> str:
    """The store the edge records this command's run in: ``--store``, ``$FUNNELGUARD_STORE``,
    the project's ``store:``, else the default."""
    from funnelguard.cli import default_store_url, store_url_of
    from funnelguard.errors import FunnelguardError

    try:
        return store_url_of(args)
    except FunnelguardError:  # no readable project here: the store flags and the default
        return args.store or default_store_url()


def _open(args: argparse.Namespace):
    from monitors.store import open_store

    return open_store(_store_url(args))


def _flush(args: argparse.Namespace):
    from funnelguard.cli import write_json
    from funnelguard.errors import EXIT_ENVIRONMENT
    from monitors.alerts.dispatch import flush

    report = flush(_store_url(args), args.slack_conn)
    result = report.to_result()
    for d in report.deliveries:
        line = f"{d.status:<8} #{d.outbox_id:<5} {d.kind:<10} {d.group_key}"
        print(line + (f"  ({d.error})" if d.error and d.status != "sent" else ""))
    print(f"funnelguard alerts flush: {len(report.sent)} sent, {len(report.kept)} kept for "
          f"retry, {len(report.failed)} rejected; {report.outstanding} waiting after failed "
          f"deliveries" + (f"; {len(report.held)} rejected earlier, held for `alerts retry`"
                           if report.held else ""))
    if report.exit_code == EXIT_ENVIRONMENT:
        # The edge keeps findings only for a result, and an error would replace them: a flush
        # that leaves messages queued writes its own document, each row reported.
        if args.json_out:
            write_json(args.json_out, result)
        return EXIT_ENVIRONMENT
    return result  # the edge stores it, writes --json, exits 1 on a rejection


def _retry(args: argparse.Namespace) -> int:
    from monitors.alerts.mutes import requeue_failed

    done = requeue_failed(_open(args), None if args.all_failed else args.ids)
    for r in done:
        print(f"re-queued #{r.outbox_id} {r.kind} {r.group_key}  (rejected before: "
              f"{r.rejected_with})")
    print(f"funnelguard alerts retry: {len(done)} alert(s) back in the outbox"
          + ("; `funnelguard alerts flush` (or the next DAG run) posts them" if done else
             "; none was rejected"))
    return 0


def _mute(args: argparse.Namespace) -> int:
    from monitors.alerts.mutes import mute_all
    from monitors.alerts.settings import parse_duration

    duration = parse_duration(args.duration, where="alerts mute --for")
    for view in mute_all(_open(args), args.fingerprints, duration, args.reason,
                         groups=args.groups):
        print(f"muted {view.fingerprint} until {view.muted_until:%Y-%m-%d %H:%M} UTC: "
              f"{view.mute_reason}")
    return 0


def _unmute(args: argparse.Namespace) -> int:
    from monitors.alerts.mutes import unmute_all

    for view in unmute_all(_open(args), args.fingerprints, groups=args.groups):
        print(f"unmuted {view.fingerprint}")
    return 0


def _when(value) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _sent(view) -> str:
    """The "last sent" words: only for what reached Slack; a row still waiting is named."""
    if view.queued:
        waiting = "queued " + ", ".join(f"#{i}" for i in view.queued) + ", not sent yet"
        return waiting + (f" (last sent {_when(view.delivered_at)})" if view.delivered_at
                          else "")
    return f"last sent {_when(view.delivered_at)}" if view.delivered_at else "never sent"


def _preview(args: argparse.Namespace) -> int:
    import json

    from monitors.alerts.preview import describe, preview

    previews = preview(_open(args))
    if args.as_json:
        print(json.dumps({"alerts": [p.to_json() for p in previews]}, indent=2,
                         ensure_ascii=False))
        return 0
    if previews:
        print(describe(previews))
    silent = sum(p.message is None for p in previews)
    print(f"funnelguard alerts preview: {len(previews)} message(s) queued, "
          f"{sum(p.due and p.message is not None for p in previews)} due now"
          + (f", {silent} with every finding muted" if silent else "") + "; nothing sent")
    return 0


def _list(args: argparse.Namespace) -> int:
    import json

    from monitors.alerts.mutes import list_alerts

    listing = list_alerts(_open(args))
    if args.as_json:
        print(json.dumps(listing.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(f"OPEN ({len(listing.open)})")
    for v in listing.open:
        print(f"  {v.fingerprint}  since {v.first_partition or '—'}  {_sent(v)}  repeats "
              f"{v.repeats_since_sent}")
    print(f"MUTED ({len(listing.muted)})")
    for v in listing.muted:
        print(f"  {v.fingerprint}  until {_when(v.muted_until)}  ({v.status}) {v.mute_reason}")
    print(f"PENDING ({len(listing.pending)})")
    for p in listing.pending:
        print(f"  #{p.outbox_id} {p.kind} {p.group_key}  {p.status}, {p.attempts} attempt(s), "
              f"next {_when(p.next_attempt_at)}" + (f"  last error: {p.last_error}"
                                                    if p.last_error else ""))
    if listing.failed:
        print(f"REJECTED BY SLACK ({len(listing.failed)}; fix the connection or the message, "
              f"then `funnelguard alerts retry --id N` or `--all-failed`)")
        for p in listing.failed:
            print(f"  #{p.outbox_id} {p.kind} {p.group_key}: {p.last_error}")
    return 0
