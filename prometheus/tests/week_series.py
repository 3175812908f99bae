"""Authoring helper for week.test.yml: builds the replayed week's series step by step (15 s) and
writes them in promtool's expanding notation, plus the probe list (every page at every probe time).

    python3 prometheus/tests/week_series.py /tmp/series.yml /tmp/probes.yml

The scenario is described in week.test.yml's header; this script only does the arithmetic. The
test file is the series, then `alert_rule_test:` and the probes; the `exp_annotations` of firing
probes were then added from promtool's rendering and checked by hand (the values are the
failure and unavailability ratios the scenario implies). The test suite never runs this script."""
from fractions import Fraction as F
import sys

STEP = 15
H = 3600 // STEP          # steps per hour
D = 24 * H
N = 7 * D                 # the week
def t(day, hh, mm=0, ss=0):
    return day * D + hh * H + (mm * 60 + ss) // STEP

POOL = 'job="ops-worker", service="ops-worker-pool-ab12"'
# instance -> (first step, last step exclusive)
LIFE = {
    '10.0.0.1': (0, t(2, 12, 1)),
    '10.0.0.2': (0, t(2, 12, 3)),
    '10.0.0.3': (t(2, 12), t(5, 13, 1)),
    '10.0.0.4': (t(2, 12, 1), t(5, 13, 3)),
    # scale-out on day 4, 10:00-16:00 (5 instances), a new instance's first scrape fails
    '10.0.0.5': (t(4, 10), t(4, 16, 1)),
    '10.0.0.6': (t(4, 10, 1), t(4, 16, 2)),
    '10.0.0.7': (t(4, 10, 2), t(4, 16, 3)),
    '10.0.0.8': (t(5, 13), N),
    '10.0.0.9': (t(5, 13, 1), N),
}
# scrapes that fail while the instance exists (up 0, no other series)
def down(inst, s):
    a, b = LIFE[inst]
    if s == b - 1 and inst in ('10.0.0.1', '10.0.0.3', '10.0.0.5', '10.0.0.6', '10.0.0.7'):
        return True       # the last scrape of a draining instance fails before DNS drops it
    if s == a and inst == '10.0.0.6':
        return True       # a new instance not listening yet
    if inst == '10.0.0.2' and t(1, 16) <= s < t(1, 16) + 2:
        return True       # two failed scrapes of one instance
    if t(5, 9) <= s < t(5, 9, 25):
        return True       # incident 2: the pool crash-loops for 25 minutes
    return False
def gap(s):
    # Prometheus itself missed 3 scrapes (45 s): no sample at all
    return t(1, 20) <= s < t(1, 20) + 3
STOP = (t(6, 10), t(6, 12))            # an operator stops the pool
PAUSE = (t(2, 1), t(2, 5))             # P3 paused at night with a backlog
INCIDENT1 = (t(3, 15), t(3, 15, 50))   # Vercel token expired: every task fails
def live(s):
    return [i for i, (a, b) in LIFE.items() if a <= s < b and not gap(s)]
def running(s):
    return not (STOP[0] <= s < STOP[1])

def traffic(s, inst):
    """(finished, failed) tasks of one instance during step s. Increments are binary fractions
    (1/64, 1/32, 2.5), so the expanded counters add up exactly and never look like resets."""
    hh = (s % D) // H
    day = s // D
    if STOP[0] <= s < STOP[1]:
        return F(0), F(0)
    if 7 <= hh < 22:
        fin, fail = F(5, 2), F(1, 32)          # 10 a minute per instance, 1.25% fail
    else:
        fin, fail = F(1, 64), F(0)             # a task every 16 minutes per instance
    if day == 3 and hh == 3:                   # a quiet night's bad hour: 3 of 4 fail
        fin, fail = F(0), F(0)
        if inst == '10.0.0.3':
            for m, f in ((0, 0), (10, 1), (12, 1), (14, 1)):
                if s == t(3, 3, m):
                    fin, fail = F(1), F(f)
    if t(1, 14) <= s < t(1, 14) + 4 and inst == '10.0.0.1':   # a burst: 4 failures in a minute
        fail, fin = fail + 1, fin + 1
    if INCIDENT1[0] <= s < INCIDENT1[1]:
        fail = fin
    return fin, fail

series = {}   # name -> list of values (None = no sample, 'stale')
def put(name, s, v):
    series.setdefault(name, [None] * N)[s] = v

totals = {}
for s in range(N):
    insts = live(s)
    ok = [i for i in insts if not down(i, s)]
    for i in insts:
        put(f'up{{{POOL}, instance="{i}"}}', s, 0 if down(i, s) else 1)
        if down(i, s) and s > 0:
            # a failed scrape marks the instance's other series stale
            for name, vals in series.items():
                if f'instance="{i}"' in name and not name.startswith('up{') and vals[s - 1] not in (None, 'stale'):
                    vals[s] = 'stale'
    for i in ok:
        fin, fail = traffic(s, i)
        c = totals.setdefault(i, [F(0), F(0)])
        c[0] += fin - fail
        c[1] += fail
        put(f'ops_worker_tasks_total{{{POOL}, instance="{i}", type="deploy", outcome="completed"}}', s, c[0])
        put(f'ops_worker_tasks_total{{{POOL}, instance="{i}", type="deploy", outcome="failed"}}', s, c[1])
        put(f'ops_worker_worker_status{{{POOL}, instance="{i}", status="running"}}', s, 1 if running(s) else 0)
        put(f'ops_worker_worker_status{{{POOL}, instance="{i}", status="stopped"}}', s, 0 if running(s) else 1)
        put(f'ops_worker_worker_status{{{POOL}, instance="{i}", status="error"}}', s, 0)
        # a 1-minute Redis blip on day 4 at 02:00: every instance fails 4 calls
        rerr = totals.setdefault(i + 'redis', [0])
        if t(4, 2) <= s < t(4, 2, 1):
            rerr[0] += 1
        put(f'ops_worker_redis_errors_total{{{POOL}, instance="{i}"}}', s, rerr[0])
        paused = 1 if PAUSE[0] <= s < PAUSE[1] else 0
        backlog = 150 if PAUSE[0] <= s < PAUSE[1] else 0
        if STOP[0] <= s < STOP[1]:
            p2 = min(90, (s - STOP[0]) // 4)  # tasks wait while the pool is stopped
        else:
            p2 = 2
        put(f'ops_worker_queue_pending{{{POOL}, instance="{i}", priority="P2"}}', s, p2)
        put(f'ops_worker_queue_pending{{{POOL}, instance="{i}", priority="P3"}}', s, backlog)
        put(f'ops_worker_queue_paused{{{POOL}, instance="{i}", priority="P3"}}', s, paused)
    # the API service: always up, never part of the pool's availability
    if not gap(s):
        put('up{job="ops-worker", service="ops-worker-api-cd34", instance="10.0.1.1"}', s, 1)
        put('up{job="ops-worker-local", instance="localhost:8080"}', s, 0)
# instances that left: stale marker after their last sample
for name, vals in series.items():
    last = max((k for k, v in enumerate(vals) if v is not None), default=None)
    if last is not None and last < N - 1 - 3:
        vals[last + 1] = 'stale'

def fmt(x):
    x = float(x)
    return repr(int(x)) if x == int(x) else repr(x)

def compress(vals):
    out, k = [], 0
    while k < len(vals):
        v = vals[k]
        if v is None:
            j = k
            while j < len(vals) and vals[j] is None:
                j += 1
            if j == len(vals):
                break
            out.append('_' if j - k == 1 else f'_x{j - k}')
            k = j
            continue
        if v == 'stale':
            out.append('stale'); k += 1; continue
        j = k + 1
        if j < len(vals) and vals[j] not in (None, 'stale'):
            d = vals[j] - v
            while j + 1 < len(vals) and vals[j + 1] not in (None, 'stale') and vals[j + 1] - vals[j] == d:
                j += 1
            n = j - k
            out.append(f'{fmt(v)}x{n}' if d == 0 else f'{fmt(v)}+{fmt(d)}x{n}')
            k = j + 1
        else:
            out.append(fmt(v)); k += 1
    return ' '.join(out)

def order(name):
    return (name.split('{')[0], name)
with open(sys.argv[1], 'w') as f:
    for name in sorted(series, key=order):
        f.write(f"      - series: '{name}'\n        values: '{compress(series[name])}'\n")

PAGES = ['WorkerDown', 'TaskErrorBudgetFastBurn', 'PoolAvailabilityFastBurn', 'RedisDown']
LABELS = {
    'WorkerDown': {'severity': 'critical', 'job': 'ops-worker'},
    'TaskErrorBudgetFastBurn': {'severity': 'critical', 'slo': 'task-success', 'job': 'ops-worker'},
    'PoolAvailabilityFastBurn': {'severity': 'critical', 'slo': 'pool-availability', 'job': 'ops-worker'},
    'PoolNotRunning': {'severity': 'warning', 'job': 'ops-worker'},
    'PriorityPausedTooLong': {'severity': 'warning', 'job': 'ops-worker', 'priority': 'P3'},
}
# (day, hh, mm, ss, what happens, pages expected)
PROBES = [
    (0, 3, 0, 0, 'first night', []),
    (0, 12, 0, 0, 'a working day', []),
    (1, 14, 0, 30, 'burst of 4 failures, during', []),
    (1, 14, 3, 0, 'burst of 4 failures, after', []),
    (1, 16, 0, 15, 'two failed scrapes of 10.0.0.2', []),
    (1, 16, 3, 0, 'after the two failed scrapes', []),
    (1, 20, 0, 30, 'Prometheus missed 45 s of scrapes', []),
    (1, 20, 3, 0, 'after the scrape gap', []),
    (2, 2, 30, 0, 'P3 paused with a backlog of 150 for 1.5 h', []),
    (2, 4, 30, 0, 'P3 paused for 3.5 h', []),
    (2, 12, 1, 0, 'deploy wave: 10.0.0.3/4 replace 10.0.0.1/2', []),
    (2, 12, 5, 0, 'after the deploy wave', []),
    (3, 3, 15, 0, 'quiet night: 3 of 4 tasks failed', []),
    (3, 3, 30, 0, 'quiet night, later', []),
    (3, 15, 30, 0, 'incident 1 (every task fails) for 30 min: budget not yet burnt at 14.4x', []),
    (3, 15, 43, 0, 'incident 1: 72% of the hour failed, fast burn pending', []),
    (3, 15, 45, 30, 'incident 1: page', ['TaskErrorBudgetFastBurn']),
    (3, 15, 48, 0, 'incident 1: page', ['TaskErrorBudgetFastBurn']),
    (3, 15, 50, 0, 'incident 1: last minute', ['TaskErrorBudgetFastBurn']),
    (3, 15, 55, 0, 'incident 1 over', []),
    (4, 2, 1, 0, 'Redis blip: every instance fails its calls for a minute', []),
    (4, 2, 5, 0, 'after the Redis blip', []),
    (4, 10, 1, 0, 'scale-out: 10.0.0.6 not listening yet', []),
    (4, 13, 0, 0, 'five instances', []),
    (4, 16, 1, 0, 'scale-in: three draining instances fail their last scrape', []),
    (4, 16, 5, 0, 'after the scale-in', []),
    (5, 9, 1, 0, 'incident 2 (pool crash-loops): WorkerDown pending', []),
    (5, 9, 5, 0, 'incident 2: WorkerDown pages', ['WorkerDown']),
    (5, 9, 15, 0, 'incident 2: availability burns too (Alertmanager inhibits it)', ['WorkerDown', 'PoolAvailabilityFastBurn']),
    (5, 9, 24, 0, 'incident 2: last minute', ['WorkerDown', 'PoolAvailabilityFastBurn']),
    (5, 9, 30, 0, 'incident 2 over', []),
    (5, 13, 2, 0, 'deploy wave: 10.0.0.8/9 replace 10.0.0.3/4', []),
    (6, 10, 30, 0, 'pool stopped by an operator', []),
    (6, 11, 59, 0, 'pool stopped for 2 hours', []),
    (6, 12, 10, 0, 'pool started again', []),
    (6, 23, 59, 0, 'end of the week', []),
]
def dur(day, hh, mm, ss):
    out = ''
    if day * 24 + hh: out += f'{day * 24 + hh}h'
    if mm: out += f'{mm}m'
    if ss: out += f'{ss}s'
    return out or '0s'
def entry(when, name, firing, comment=None):
    lines = []
    if firing:
        lines.append(f'      - eval_time: {when}')
        lines.append(f'        alertname: {name}')
        lines.append('        exp_alerts:')
        for inst in (['10.0.0.8', '10.0.0.9'] if name == 'PoolNotRunning' else [None]):
            lines.append('          - exp_labels:')
            for k, v in LABELS[name].items():
                lines.append(f'              {k}: {v}')
            if inst:
                lines.append(f'              instance: {inst}')
    else:
        lines.append(f'      - {{eval_time: {when}, alertname: {name}, exp_alerts: []}}')
    return lines
with open(sys.argv[2], 'w') as f:
    for day, hh, mm, ss, what, pages in PROBES:
        when = dur(day, hh, mm, ss)
        f.write(f'      # day {day} {hh:02}:{mm:02}:{ss:02}: {what}\n')
        for name in PAGES:
            f.write('\n'.join(entry(when, name, name in pages)) + '\n')
        if (day, hh, mm) in ((6, 10, 30), (6, 11, 59)):
            f.write('\n'.join(entry(when, 'PoolNotRunning', True)) + '\n')
        if (day, hh, mm) == (6, 12, 10):
            f.write('\n'.join(entry(when, 'PoolNotRunning', False)) + '\n')
        if (day, hh, mm) == (2, 4, 30):
            f.write('\n'.join(entry(when, 'PriorityPausedTooLong', True)) + '\n')
        if (day, hh) == (2, 2):
            f.write('\n'.join(entry(when, 'PriorityPausedTooLong', False)) + '\n')
        if day == 2 and hh in (2, 4):
            f.write('\n'.join(entry(when, 'HighQueueDepth', False)) + '\n')
