"""The keys of Users' own events (adapters.personal_keys.SubjectKeys) on both stores: an import
of many people makes their keys in one write, not one each, and every profile reads back."""
from __future__ import annotations

from domain.units import to_micros
from datetime import datetime, timezone


def test_an_import_of_many_people_makes_their_keys_in_one_write_and_reads_back(runtime, monkeypatch):
    from domain.users import User

    keys = runtime.app.mapper.subjects.keys
    writes = []
    run = keys._run

    def counted(sql, params=(), *, write=False, many=False):
        if write:
            writes.append(sql)
        return run(sql, params, write=write, many=many)

    monkeypatch.setattr(keys, "_run", counted)
    now = to_micros(datetime(2026, 1, 20, 9, 0, tzinfo=timezone.utc))
    people = [User.import_(source="local", login=f"person{i:03d}", now=now,
                           profile={"full_name": f"Person Number {i}", "email": f"p{i}@example.org"})
              for i in range(40)]
    runtime.app.save(*people)
    subject_writes = [sql for sql in writes if "_subjects" in sql]
    assert len(subject_writes) == 1
    runtime.app.mapper.subjects.forget_cache()  # read the keys back from the database, not the cache
    for i, person in enumerate(people):
        back = runtime.app.repository.get(person.id)
        assert (back.login, back.profile["full_name"]) == (f"person{i:03d}", f"Person Number {i}")
