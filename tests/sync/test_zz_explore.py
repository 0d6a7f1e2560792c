from datetime import datetime, timedelta, UTC
from pathlib import Path
from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository
from calmesh.fakes.samples import single, PARIS, weekly_series

def test_x(radicale, xandikos, tmp_path):
    r, x = radicale.new_calendar(), xandikos.new_calendar()
    conns = {"rad": radicale.connector("rad"), "xan": xandikos.connector("xan")}
    g = SyncGroupConfig(calendars=[SyncMember(platform="rad", calendar=r), SyncMember(platform="xan", calendar=x)])
    eng = SyncEngine(SyncRepository(open_store(f"sqlite:///{tmp_path}/s.db")), conns.__getitem__, retry_sleep=lambda s: None)
    conns["rad"].put(r, single("e1@t", datetime(2026,11,24,9,tzinfo=PARIS), datetime(2026,11,24,10,tzinfo=PARIS)))
    conns["rad"].put(r, weekly_series())
    rep = eng.run("g", g); print(rep.counts, rep.errors)
    for i in conns["xan"].items(x)[0]:
        print(i.uid, i.ref, [ (c.summary, c.start, c.recurrence_id, c.extra, c.tzid) for c in i.components])
    rep = eng.run("g", g); print(rep.counts, rep.errors, rep.full)
    rep = eng.run("g", g, full=True); print(rep.counts, rep.errors, rep.full)
    assert 0
