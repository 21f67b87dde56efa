"""The second project's contracts: a lending marketplace nobody here designed.

Its own table and column names, its own partition (``event_date``) and key (``imp_key``), event
time ``shown_at``, three funnel stages ``click -> signup -> funded`` with maturity windows of
1 / 5 / 10 days, its own features and sentinels (-999, -9.0, "none", "na"), its own owners.
"""

from __future__ import annotations

PROJECT_YAML = """\
name: marketplace
contracts:
  impressions: contracts/ranking_requests.yaml
  features: contracts/marketplace_features.yaml
  labels: contracts/outcomes.yaml
warehouse: {warehouse}
store: sqlite:///.funnelguard/results.db
"""

_TEAM = """\
team:
  name: {team}
  members:
    - username: {team}-oncall
      role: owner
  customProperties:
    - property: slack
      value: ["{slack}"]
    - property: slackChannel
      value: "#{team}-alerts"
"""

RANKING_REQUESTS = """\
apiVersion: v3.1.0
kind: DataContract
id: ranking_requests
name: ranking_requests
version: 0.3.0
status: active
description:
  purpose: Every listing the marketplace ranked and showed to a member.
""" + _TEAM.format(team="marketplace-data", slack="<!subteam^S0MKTDATA>") + """\
slaProperties:
  - property: latency
    value: 3
    unit: h
customProperties:
  - property: environments
    value: {offline: ranking_requests}
  - property: segments
    value: [channel]
schema:
  - name: ranking_requests
    physicalType: table
    properties:
      - name: imp_key
        logicalType: string
        required: true
        primaryKey: true
        unique: true
      - name: event_date
        logicalType: date
        required: true
        partitioned: true
        customProperties:
          - {property: role, value: meta}
      - name: shown_at
        logicalType: timestamp
        required: true
      - name: member_ref
        logicalType: string
        required: true
        classification: pii
        customProperties:
          - {property: role, value: id}
      - name: listing_ref
        logicalType: string
        required: true
        customProperties:
          - {property: role, value: id}
      - name: channel
        logicalType: string
        required: true
        enum: [{value: app}, {value: web}, {value: partner}]
"""

MARKETPLACE_FEATURES = """\
apiVersion: v3.1.0
kind: DataContract
id: marketplace_features
name: marketplace_features
version: 2.1.0
status: active
description:
  purpose: What the marketplace's loan ranker reads, batch (offline) and served (online).
""" + _TEAM.format(team="marketplace-data", slack="<!subteam^S0MKTDATA>") + """\
slaProperties:
  - property: latency
    value: 8
    unit: h
customProperties:
  - property: environments
    value: {offline: features_batch, online: features_served}
  - property: segments
    value: [channel, member_tier]
schema:
  - name: marketplace_features
    physicalType: table
    properties:
      - name: imp_key
        logicalType: string
        required: true
        primaryKey: true
        unique: true
      - name: event_date
        logicalType: date
        required: true
        partitioned: true
        customProperties:
          - {property: role, value: meta}
      - name: served_ts
        logicalType: timestamp
        required: true
        customProperties:
          - {property: environments, value: [online]}
      - name: scorer_tag
        logicalType: string
        required: true
        customProperties:
          - {property: role, value: meta}
          - {property: environments, value: [online]}
      - name: member_ref
        logicalType: string
        required: true
        classification: pii
        customProperties:
          - {property: role, value: id}
          - {property: default, value: anon}
          - {property: maxDefaultRate, value: 0.05}
      - name: listing_ref
        logicalType: string
        required: true
        customProperties:
          - {property: role, value: id}
          - {property: default, value: anon}
          - {property: maxDefaultRate, value: 0.05}
      - name: loan_amount
        logicalType: number
        required: true
        classification: restricted
        logicalTypeOptions: {minimum: 500, maximum: 50000}
        customProperties:
          - {property: default, value: -999}
          - {property: maxDefaultRate, value: 0.05}
      - name: quoted_apr
        logicalType: number
        required: true
        logicalTypeOptions: {minimum: 0, maximum: 40}
        description: The APR quoted by the pricing service, percent.
        customProperties:
          - {property: default, value: -9.0}
          - {property: maxDefaultRate, value: 0.05}
          - {property: checks, value: {default_rate: {tolerance: 0.01, severity: error}}}
          - property: owner
            value: {team: pricing, slack: ["<!subteam^S0PRICING>"], channel: "#pricing-oncall"}
      - name: tenure_months
        logicalType: integer
        required: true
        logicalTypeOptions: {minimum: 0, maximum: 600}
        customProperties:
          - {property: default, value: -999}
          - {property: maxDefaultRate, value: 0.05}
      - name: member_tier
        logicalType: string
        required: true
        enum: [{value: bronze}, {value: silver}, {value: gold}]
        customProperties:
          - {property: default, value: none}
          - {property: maxDefaultRate, value: 0.05}
      - name: channel
        logicalType: string
        required: true
        enum: [{value: app}, {value: web}, {value: partner}]
        customProperties:
          - {property: default, value: na}
          - {property: maxDefaultRate, value: 0.05}
      - name: prior_signups
        logicalType: integer
        required: true
        logicalTypeOptions: {minimum: 0}
        customProperties:
          - {property: default, value: -999}
          - {property: maxDefaultRate, value: 0.05}
      - name: pred_click
        logicalType: number
        required: true
        logicalTypeOptions: {minimum: 0, maximum: 1}
        customProperties:
          - {property: role, value: score}
          - {property: task, value: click}
          - {property: environments, value: [online]}
      - name: pred_signup
        logicalType: number
        required: true
        logicalTypeOptions: {minimum: 0, maximum: 1}
        customProperties:
          - {property: role, value: score}
          - {property: task, value: signup}
          - {property: environments, value: [online]}
      - name: pred_funded
        logicalType: number
        required: true
        logicalTypeOptions: {minimum: 0, maximum: 1}
        customProperties:
          - {property: role, value: score}
          - {property: task, value: funded}
          - {property: environments, value: [online]}
"""

_STAGE = """\
      - name: {stage}_time
        logicalType: timestamp
        customProperties:
          - {{property: role, value: label}}
          - {{property: task, value: {stage}}}
      - name: {stage}_landed
        logicalType: timestamp
        customProperties:
          - {{property: role, value: timestamp}}
          - {{property: task, value: {stage}}}
"""

STAGES = {"click": 1, "signup": 5, "funded": 10}

OUTCOMES = """\
apiVersion: v3.1.0
kind: DataContract
id: outcomes
name: outcomes
version: 1.4.0
status: active
description:
  purpose: Click, signup and funding outcomes of each shown listing.
""" + _TEAM.format(team="growth-analytics", slack="<!subteam^S0GROWTH>") + """\
slaProperties:
  - property: latency
    value: 30
    unit: h
customProperties:
  - property: environments
    value: {offline: outcomes}
  - property: maturityWindows
    value:
""" + "".join(f"      {s}: {{days: {d}, countsFrom: shown_at}}\n" for s, d in STAGES.items()) + """\
schema:
  - name: outcomes
    physicalType: table
    properties:
      - name: imp_key
        logicalType: string
        required: true
        primaryKey: true
        unique: true
      - name: event_date
        logicalType: date
        required: true
        partitioned: true
        customProperties:
          - {property: role, value: meta}
""" + "".join(_STAGE.format(stage=s) for s in STAGES)

CONTRACT_FILES = {
    "ranking_requests.yaml": RANKING_REQUESTS,
    "marketplace_features.yaml": MARKETPLACE_FEATURES,
    "outcomes.yaml": OUTCOMES,
}
