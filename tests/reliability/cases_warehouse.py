"""Broken copies of a project's warehouse (a dropped contract column or table, text in a
number or timestamp column, NULL and duplicate keys, +-inf, an empty table, a view, lost declared
types, a file that is no database) and the command tried on each.
"""

from __future__ import annotations

from tests.reliability.case_types import DATE, ONE, Corruption

__all__ = ["CORRUPTIONS"]

SOME = "rowid IN (SELECT rowid FROM {t} WHERE {part_col} = '{day}' LIMIT {n})"


def _some(table: str, n: int = 3) -> str:
    return SOME.replace("{t}", table).replace("{n}", str(n))


# Three labelled rows of the day (most rows have no event, and a NULL stays NULL).
LABEL_SOON = ("UPDATE {labels} SET {label_ts} = 'soon' WHERE rowid IN (SELECT rowid FROM {labels} "
              "WHERE {part_col} = '{day}' AND {label_ts} IS NOT NULL LIMIT 3)")
VAL_OFF = ("validate", "{where}", *DATE, "--env", "offline")
VAL_ON = ("validate", "{where}", *DATE, "--env", "online")

CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption("contract_column_dropped", ("ALTER TABLE {offline} DROP COLUMN {dropped}",),
               VAL_OFF, 2, "expected column(s) ['{dropped}'] in table '{offline}' of warehouse"),
    Corruption("contract_column_dropped_drift", ("ALTER TABLE {offline} DROP COLUMN {dropped}",),
               ("drift", "{where}", *DATE, "--html", "{tmp}/html"), 2,
               "expected columns ['{dropped}'] in table '{offline}'", ONE),
    Corruption("online_table_dropped", ("DROP TABLE {online}",), VAL_ON, 2,
               "expected table '{online}' in warehouse", ONE),
    Corruption("online_table_dropped_skew", ("DROP TABLE {online}",),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 2,
               "expected table '{online}' in warehouse"),
    Corruption("labels_table_dropped_gate", ("DROP TABLE {labels}",),
               ("gate", "{where}", "--as-of", "{as_of}"), 2,
               "expected table '{labels}' in warehouse"),
    Corruption("text_in_a_number_column",
               ("UPDATE {offline} SET {number} = 'abc' WHERE " + _some("{offline}", 5),),
               VAL_OFF, 1, "5 of {day_rows} rows of {number} are not of type number",
               why="a dtype finding (a real failed check)"),
    Corruption("text_in_an_online_number_column",
               ("UPDATE {online} SET {online_number} = 'n/a' WHERE " + _some("{online}", 5),),
               VAL_ON, 1, "rows of {online_number} are not of type number"),
    Corruption("text_in_a_number_column_skew",
               ("UPDATE {offline} SET {number} = 'abc' WHERE " + _some("{offline}", 5),),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 1, "{number}", ONE),
    Corruption("text_in_a_served_feature_replay",
               ("UPDATE {online} SET {online_number} = 'n/a' WHERE " + _some("{online}", 5),),
               ("replay", "{where}", *DATE, "--model", "served"), (1, 2), "{online_number}", ONE,
               why="either a finding on the column (1) or a clear input error naming it (2)"),
    Corruption("float_in_an_integer_column",
               ("UPDATE {offline} SET {integer} = 700.5 WHERE " + _some("{offline}"),),
               VAL_OFF, 1, "3 of {day_rows} rows of {integer} are not of type integer", ONE),
    Corruption("null_keys", ("!nullable {offline} {key_col}",
                             "UPDATE {offline} SET {key_col} = NULL WHERE " + _some("{offline}")),
               VAL_OFF, 1, "3 of {day_rows} rows of {key_col} are null"),
    Corruption("null_keys_skew", ("!nullable {offline} {key_col}",
                                  "UPDATE {offline} SET {key_col} = NULL WHERE "
                                  + _some("{offline}")),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 1, "null key", ONE),
    Corruption("duplicate_keys", ("INSERT INTO {offline} SELECT * FROM {offline} WHERE "
                                  "{part_col} = '{day}' LIMIT 4",),
               VAL_OFF, 1, "rows of {key_col} repeat a key that must be unique"),
    Corruption("yesterday_in_a_timestamp",
               ("UPDATE {online} SET {served_ts} = 'yesterday' WHERE " + _some("{online}"),),
               VAL_ON, 1, "rows of {served_ts} are not of type timestamp"),
    Corruption("yesterday_in_the_event_time",
               ("UPDATE {impressions} SET {event_ts} = 'yesterday' WHERE "
                + _some("{impressions}"),),
               ("validate", "{where}", *DATE, "--env", "offline", "--dataset", "impressions"), 1,
               "rows of {event_ts} are not of type timestamp"),
    Corruption("yesterday_in_the_event_time_freshness",
               ("UPDATE {impressions} SET {event_ts} = 'yesterday' WHERE "
                + _some("{impressions}"),),
               ("freshness", "{where}", *DATE, "--html", "{tmp}/html"), 1,
               "3 of {day_rows} rows have {event_ts} text that is not a timestamp"),
    Corruption("text_in_a_label_timestamp",
               (LABEL_SOON,),
               ("validate", "{where}", *DATE, "--env", "offline", "--dataset", "labels"), 1,
               "rows of {label_ts} are not of type timestamp"),
    Corruption("text_in_a_label_timestamp_gate",
               (LABEL_SOON,),
               ("gate", "{where}", "--as-of", "{as_of}"), 2,
               "column '{label_ts}': expected timestamps"),
    Corruption("plus_infinity", ("UPDATE {offline} SET {number} = 9e999 WHERE "
                                 + _some("{offline}"),),
               VAL_OFF, 1, "3 of {day_rows} rows of {number} are not finite"),
    Corruption("minus_infinity", ("UPDATE {offline} SET {number} = -9e999 WHERE "
                                  + _some("{offline}"),),
               VAL_OFF, 1, "rows of {number} are not finite", ONE),
    Corruption("nan_stored_as_null", ("UPDATE {offline} SET {number} = NULL WHERE "
                                      + _some("{offline}"),),
               VAL_OFF, 1, "rows of {number} are null",
               why="SQLite stores NaN as NULL: a required feature's null finding"),
    Corruption("value_outside_the_enum", ("UPDATE {offline} SET {category} = 'bogus' WHERE "
                                          + _some("{offline}", 2),),
               VAL_OFF, 1, "2 of {day_rows} rows of {category} are not one of", ONE,
               why="a real failed check"),
    Corruption("empty_table", ("DELETE FROM {online}",), VAL_ON, 2,
               "expected rows for partition {part_col}={day} in table '{online}'"),
    Corruption("partition_missing_online_skew", ("DELETE FROM {online} WHERE {part_col} = '{day}'",),
               ("skew", "{where}", *DATE, "--html", "{tmp}/html"), 2,
               "expected rows with {part_col} = {day} in table '{online}'", ONE),
    Corruption("view_instead_of_a_table",
               ("ALTER TABLE {offline} RENAME TO {offline}__t",
                "CREATE VIEW {offline} AS SELECT * FROM {offline}__t"),
               VAL_OFF, 0, "pass", why="a view with the contract's columns is as good as a table"),
    Corruption("view_instead_of_a_table_drift",
               ("ALTER TABLE {offline} RENAME TO {offline}__t",
                "CREATE VIEW {offline} AS SELECT * FROM {offline}__t"),
               ("drift", "{where}", *DATE, "--html", "{tmp}/html"), 0, "drift", ONE),
    Corruption("declared_types_lost", ("!ctas {offline}",), VAL_OFF, 0, "pass", ONE,
               why="CREATE TABLE AS SELECT declares the date column NUM: the rows are intact, "
                   "only the declared types are gone"),
    Corruption("not_a_database", ("!garbage",), VAL_OFF, 2,
               "expected a SQLite database, found a file that is not one at"),
    Corruption("zero_byte_file", ("!zero",), VAL_OFF, 2, "expected table '{offline}' in warehouse"),
)
