"""The site's page templates (Jinja2, autoescaped) and the environment that renders them.

Templates are data: they receive finished view objects from :mod:`monitors.site.pages` and only
lay them out. Every page links its styles inline and an empty favicon, so a page makes no
request besides ``assets/plotly.min.js`` (and that only when it has a plot). ``root`` is the
relative path from the page to the site's top (``""`` or ``"../"``).
"""

from __future__ import annotations

import functools

__all__ = ["render", "TEMPLATES"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328}
nav{background:#24292f;padding:8px 16px}nav a{color:#fff;margin-right:16px;text-decoration:none}
main{padding:12px 20px;max-width:1400px}h1{font-size:20px}h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.st{font-weight:600;padding:0 4px;border-radius:3px;font-size:12px}
.st-fail,.st-error{background:#ffebe9;color:#a40e26}.st-warn{background:#fff8c5;color:#7d4e00}
.st-pass{background:#dafbe1;color:#116329}td.cell{min-width:90px;font-size:12px}
td.cell a{text-decoration:none;color:inherit;display:block}td.fail,td.error{background:#ffebe9}
td.warn{background:#fff8c5}td.pass{background:#dafbe1}.muted{color:#656d76}
tr.examples td{background:#fafafa;font-size:12px}code{font-size:12px}
.plot{border:1px solid #d0d7de;margin:8px 0}.note{color:#656d76;font-size:12px}
"""

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · funnelguard</title><link rel="icon" href="data:,">
<style>{{ css }}</style>
{% if has_plots %}<script src="{{ root }}assets/plotly.min.js"></script>{% endif %}
</head><body>
<nav><a href="{{ root }}index.html">funnelguard results</a><a href="{{ root }}evaluations.html">evaluations</a><a href="{{ root }}training.html">training</a></nav>
<main>
<h1>{{ title }}</h1>
{% block body %}{% endblock %}
<p class="note">Built {{ built_at }} from the results store.</p>
</main></body></html>
"""

_MACROS = """
{% macro status(s) %}<span class="st st-{{ s }}">{{ s|upper }}</span>{% endmacro %}
{% macro grid(g, root) %}
<table class="grid"><tr><th>partition</th>
{% for c in g.columns %}<th data-column="{{ c.slug }}">{% if c.dataset_page %}<a href="{{ root }}{{ c.dataset_page }}">{{ c.dataset }}</a>{% else %}{{ c.dataset }}{% endif %}<br><span class="muted">{{ c.command }}{% if c.environment %} · {{ c.environment }}{% endif %}</span></th>{% endfor %}
</tr>
{% for row in g.rows %}<tr class="grid-row" data-partition="{{ row.partition }}"><th>{{ row.partition or "-" }}</th>
{% for cell in row.cells %}{% if cell %}<td class="cell {{ cell.state }}" data-run="{{ cell.run_id }}" title="{{ cell.title }}"><a href="{{ root }}runs/{{ cell.run_id }}.html">{{ status(cell.state) }} {{ cell.text }}</a></td>{% else %}<td class="cell"></td>{% endif %}{% endfor %}
</tr>{% endfor %}
</table>
{% endmacro %}
{% macro runs_table(runs, root) %}
<table class="runs"><tr><th>partition</th><th>status</th><th>command</th><th>dataset</th><th>environment</th><th>failing checks</th><th>run</th></tr>
{% for r in runs %}<tr class="run-row" data-run="{{ r.run_id }}" data-state="{{ r.state }}"><td>{{ r.partition }}</td><td>{{ status(r.state) }}</td><td>{{ r.command }}</td><td>{{ r.dataset }}</td><td>{{ r.environment }}</td><td>{{ r.text }}</td><td><a href="{{ root }}runs/{{ r.run_id }}.html">run {{ r.run_id }}</a></td></tr>{% endfor %}
</table>
{% endmacro %}
"""

_INDEX = """{% extends "base.html" %}{% import "macros.html" as m %}{% block body %}
<p>{{ totals.runs }} stored runs over {{ totals.partitions }} partitions; {{ totals.failing }} not passing.
Datasets: {% for d in datasets %}<a href="{{ d.page }}">{{ d.name }}</a>{% if not loop.last %}, {% endif %}{% endfor %}.</p>
<h2>Needs attention (newest first, failures first)</h2>
{% if attention %}{{ m.runs_table(attention, root) }}{% else %}<p>Every run in the newest {{ grid.rows|length }} partitions passed.</p>{% endif %}
<h2>Status by partition</h2>
{{ m.grid(grid, root) }}
{% if history %}<h2>Older partitions</h2><p>{% for h in history %}<a href="{{ h.page }}">{{ h.label }}</a> {% endfor %}</p>{% endif %}
{% endblock %}"""

_HISTORY = """{% extends "base.html" %}{% import "macros.html" as m %}{% block body %}
{{ m.grid(grid, root) }}
{% endblock %}"""

_RUN = """{% extends "base.html" %}{% import "macros.html" as m %}{% block body %}
<table class="facts">
<tr><th>status</th><td>{{ m.status(run.state) }}</td></tr>
<tr><th>command</th><td>{{ run.command }}</td></tr>
<tr><th>dataset</th><td>{% if run.dataset_page %}<a href="../{{ run.dataset_page }}">{{ run.dataset }}</a>{% else %}{{ run.dataset }}{% endif %}</td></tr>
<tr><th>environment</th><td>{{ run.environment }}</td></tr>
<tr><th>partition</th><td>{{ run.partition }}</td></tr>
<tr><th>recorded</th><td>{{ run.recorded_at }}</td></tr>
{% if run.contract %}<tr><th>contract</th><td><code>{{ run.contract }}</code></td></tr>{% endif %}
</table>
{% if run.error %}<h2>Error</h2><p class="error">{{ run.error }}</p>{% endif %}
{% if run.owners %}<h2>Owners of what failed</h2><ul>{% for o in run.owners %}<li>{{ o }}</li>{% endfor %}</ul>{% endif %}
<h2 id="failures">Failing checks ({{ run.failing|length }})</h2>
{% if run.failing %}<table class="findings"><tr><th></th><th>check</th><th>environment</th><th>feature</th><th>task</th><th>segment</th><th>value</th><th>threshold</th><th>count</th><th>owner</th><th>message</th></tr>
{% for f in run.failing %}<tr class="finding" id="check-{{ f.anchor }}" data-check="{{ f.check }}" data-passed="0"><td>{{ m.status(f.state) }}</td><td>{{ f.check }}</td><td>{{ f.environment }}</td><td>{{ f.feature }}</td><td>{{ f.task }}</td><td>{{ f.segment }}</td><td>{{ f.value }}</td><td>{{ f.threshold }}</td><td>{{ f.count }}</td><td>{{ f.owner }}</td><td>{{ f.message }}</td></tr>
{% if f.examples %}<tr class="examples"><td></td><td colspan="10">failing examples (as stored):
{% if f.examples.columns %}<table><tr>{% for c in f.examples.columns %}<th>{{ c }}</th>{% endfor %}</tr>{% for row in f.examples.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}{% for v in f.examples.values %}<code>{{ v }}</code>{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}
{% if f.examples.more %}<span class="note">({{ f.examples.more }} more not shown)</span>{% endif %}</td></tr>{% endif %}
{% endfor %}</table>{% else %}<p>None.</p>{% endif %}
{% if run.failing_omitted %}<p class="note">{{ run.failing_omitted }} more failing checks not listed (page size limit): <code>funnelguard runs show {{ run.id }}</code> lists them.</p>{% endif %}
{% if run.passing %}<h2 id="passing">Passing checks ({{ run.passed }})</h2><table class="passing"><tr><th>check</th><th>environment</th><th>passed</th><th>on</th></tr>
{% for p in run.passing %}<tr class="passing-check" data-check="{{ p.check }}"><td>{{ p.check }}</td><td>{{ p.environment }}</td><td>{{ p.count }}</td><td>{{ p.on }}</td></tr>{% endfor %}
</table>{% endif %}
{% if run.evaluation %}{{ run.evaluation }}{% endif %}
{% if run.artifacts %}<h2>Artifacts</h2><ul>{% for a in run.artifacts %}<li>{{ a.name }}: <a class="artifact" href="{{ a.href }}">{{ a.path }}</a>{% if a.missing %} <span class="note">(not found when the site was built)</span>{% endif %}</li>{% endfor %}</ul>{% endif %}
{% endblock %}"""

_REPLACED = """{% extends "base.html" %}{% block body %}
<meta http-equiv="refresh" content="0; url={{ target }}">
<p>Run {{ old_id }} was replaced by a rerun of the same {{ key }}: <a href="{{ target }}">run {{ new_id }}</a>.</p>
{% endblock %}"""

_GONE = """{% extends "base.html" %}{% block body %}
<p>Run {{ old_id }} ({{ key }}) is no longer in the results store.</p>
{% endblock %}"""

_PLOTS = """{% extends "base.html" %}{% import "macros.html" as m %}{% block body %}
{% if intro %}<p>{{ intro }}</p>{% endif %}
{% for section in sections %}<h2>{{ section.title }}</h2>{% if section.note %}<p class="note">{{ section.note }}</p>{% endif %}
{% for p in section.plots %}<div class="plot">{{ p }}</div>{% endfor %}
{% if section.table %}<table>{% if section.table.columns %}<tr>{% for c in section.table.columns %}<th>{{ c }}</th>{% endfor %}</tr>{% endif %}{% for row in section.table.rows %}<tr>{% for v in row %}<td>{% if v is mapping %}<a href="{{ v.href }}">{{ v.text }}</a>{% else %}{{ v }}{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% endfor %}
{% if runs %}<h2>Recent runs (newest first, failures first)</h2>{{ m.runs_table(runs, root) }}{% endif %}
{% endblock %}"""

_EVALUATION = """<h2 id="evaluation">Evaluation</h2>
{% for s in sections %}<h3>{{ s.task }}</h3>
<table class="evaluation"><tr>{% for c in s.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in s.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% for p in s.plots %}<div class="plot">{{ p }}</div>{% endfor %}
{% endfor %}"""

_ESTIMATE = """<h2 id="estimate">Estimated performance (before the labels)</h2>
<p>Expected metrics of the served scores, the model replayed on the offline features as the
outcome probability (interval: 95 % of the realized AUC); a matured day shows its realized AUC.</p>
{% for s in sections %}<h3>{{ s.task }}</h3>
<table class="evaluation"><tr>{% for c in s.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in s.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
{% if accuracy %}<h3>The estimator's accuracy (matured days)</h3>
<table class="evaluation"><tr><th>task</th><th>day</th><th>estimate − realized AUC</th>
<th>realized inside the interval</th></tr>
{% for row in accuracy %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}"""

TEMPLATES = {"base.html": _BASE, "macros.html": _MACROS, "index.html": _INDEX,
             "history.html": _HISTORY, "run.html": _RUN, "replaced.html": _REPLACED,
             "gone.html": _GONE, "plots.html": _PLOTS,
             "evaluation.html": _EVALUATION, "estimate.html": _ESTIMATE}


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.globals["css"] = _CSS.strip()
    return env


def render(name: str, **context) -> str:
    """Render template ``name``; a page needs ``title``, ``root`` and ``built_at``."""
    context.setdefault("has_plots", False)
    return _environment().get_template(name).render(**context)
