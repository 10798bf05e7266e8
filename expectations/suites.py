"""The data-quality suites, kept as code and built from the metric catalogue.

Three suites, each validated over one window (the last closed hour) by expectations.runner:

readings          every reading stamped in the window, plus any stamped in the future, pushed
                  down to the database as SQL (Great Expectations' SQLAlchemy engine):
                  not_null.<column>    device_id, metric, ts and value are set (NaN counts as
                                       null: PostgreSQL can store NaN in a float column)
                  known_metric         the metric is in the catalogue
                  range.<metric>       the value is inside the catalogue's valid range
                  boolean_values       boolean metrics are 0 or 1
                  known_device         the device is registered and not quarantined
                  not_in_future        ts is not later than the validation time plus the allowed
                                       clock skew (IOTCARE_INGEST_MAX_FUTURE_SKEW)
                  no_duplicates        one value per device, metric and second: the primary key
                                       stops exact repeats, so this catches a reading sent again
                                       with a re-rounded or jittered timestamp (the query counts
                                       each row's device/metric/second group, see the runner)
device_freshness  one row per registered device: minutes since its last reading (or since it
                  was registered, if it never sent one), as of the window's end
                  freshness            at most IOTCARE_QUALITY_FRESHNESS
dead_letter_rate  one row for the window: dead letters / (dead letters + telemetry samples),
                  a sample being one device's readings at one timestamp (one payload object)
                  dead_letter_rate     at most IOTCARE_QUALITY_DEAD_LETTER_RATE

Values known only at run time (the registry's device ids, the time, the thresholds) are suite
parameters ({"$PARAMETER": name}), passed by the runner, so the suites themselves stay static.
Every expectation carries meta["check"], the stable name results are stored and alerted under.
"""

from __future__ import annotations

from collections.abc import Callable

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from core.contract.catalogue import METRICS

READINGS = "readings"
DEVICE_FRESHNESS = "device_freshness"
DEAD_LETTER_RATE = "dead_letter_rate"
SUITE_NAMES = (READINGS, DEVICE_FRESHNESS, DEAD_LETTER_RATE)

# Suite parameters the runner must supply.
KNOWN_DEVICES = "known_devices"
LATEST_VALID_TS = "latest_valid_ts"
FRESHNESS_MINUTES = "freshness_minutes"
MAX_DEAD_LETTER_RATE = "max_dead_letter_rate"


def _param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def _check(name: str, description: str) -> dict[str, str]:
    return {"check": name, "description": description}


def readings_suite() -> gx.ExpectationSuite:
    """Row-level checks of the window's readings."""
    expectations: list[gxe.Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(
            column=column, meta=_check(f"not_null.{column}", f"{column} is set")
        )
        for column in ("device_id", "metric", "ts", "value")
    ]
    expectations.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="metric",
            value_set=sorted(METRICS),
            meta=_check("known_metric", "the metric is in the catalogue"),
        )
    )
    for metric in METRICS.values():
        if metric.boolean:
            continue
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="value",
                min_value=metric.minimum,
                max_value=metric.maximum,
                row_condition=Column("metric") == metric.name,
                meta=_check(
                    f"range.{metric.name}",
                    f"{metric.name} within {metric.minimum:g}..{metric.maximum:g} {metric.unit}",
                ),
            )
        )
    booleans = sorted(m.name for m in METRICS.values() if m.boolean)
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(
            column="value",
            value_set=[0.0, 1.0],
            row_condition=Column("metric").is_in(booleans),
            meta=_check("boolean_values", f"{', '.join(booleans)} are 0 or 1"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="device_id",
            value_set=_param(KNOWN_DEVICES),
            meta=_check("known_device", "the device is registered and not quarantined"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts",
            max_value=_param(LATEST_VALID_TS),
            meta=_check("not_in_future", "the timestamp is not in the future"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="readings_in_second",
            min_value=1,
            max_value=1,
            meta=_check("no_duplicates", "one value per device, metric and second"),
        ),
    ]
    return gx.ExpectationSuite(name=READINGS, expectations=expectations)


def device_freshness_suite() -> gx.ExpectationSuite:
    """Every registered device has reported recently."""
    return gx.ExpectationSuite(
        name=DEVICE_FRESHNESS,
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(
                column="silent_minutes",
                max_value=_param(FRESHNESS_MINUTES),
                meta=_check("freshness", "no device silent for too long"),
            ),
        ],
    )


def dead_letter_rate_suite() -> gx.ExpectationSuite:
    """Few messages break the contract."""
    return gx.ExpectationSuite(
        name=DEAD_LETTER_RATE,
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(
                column="rate",
                min_value=0,
                max_value=_param(MAX_DEAD_LETTER_RATE),
                meta=_check("dead_letter_rate", "dead-letter rate below the threshold"),
            ),
        ],
    )


BUILDERS: dict[str, Callable[[], gx.ExpectationSuite]] = {
    READINGS: readings_suite,
    DEVICE_FRESHNESS: device_freshness_suite,
    DEAD_LETTER_RATE: dead_letter_rate_suite,
}
