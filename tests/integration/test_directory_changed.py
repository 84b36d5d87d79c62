"""The directory the front door's admin keeps reaches coordination: each change is published in the admin's own
transaction with a growing version, coordination keeps the newest entry per organisation once whatever the order
and however often it arrives, and reassignment follows it (organisations it never heard of keep the defaults)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import directory, service
from services.coordination.models import DirectoryListing, TaskRecord
from services.triage import configuration
from services.triage import events as triage_events
from services.triage.models import AcuteRequest, DirectoryEntry
from shared.bus.consumer import PoisonMessage, Subscriber
from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRecord
from shared.bus.topics import DIRECTORY_CHANGED
from shared.directory import Listing, from_fhir
from shared.fhir import FhirError
from shared.region import FRONT_DOOR, ORGANISATIONS
from shared.settings import CODESYSTEM_BASE

pytestmark = pytest.mark.integration
Reassign = Callable[..., Awaitable[dict]]  # the `reassign` fixture of conftest.py

PSEUDONYM = "p-" + "7" * 32
WIJK = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
ZUIDRAND = "http://fhir.nl/fhir/NamingSystem/ura|90000010"
# Saturday 5 December 2026, 11:00 in Amsterdam.
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
ORG = {o.token: o for o in ORGANISATIONS}


def entry(token: str, *, version: int, dispositions: tuple[str, ...], hours: str = "00:00-24:00",
          weekdays_only: bool = False) -> Event:
    org = ORG[token]
    return triage_events.directory_changed(
        Listing(org.token, org.name, org.label, org.kind, dispositions, hours, weekdays_only), version=version,
        changed_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(seconds=version),
        codesystem_base=CODESYSTEM_BASE)


def consumer(sessions: async_sessionmaker[AsyncSession]) -> Subscriber:
    """Coordination's subscription as app.py subscribes it; apply() needs no broker."""
    async def handle(session: AsyncSession, event: Event) -> None:
        await directory.on_directory_changed(session, event, codesystem_base=CODESYSTEM_BASE)

    return Subscriber(name="coordination.directory-changed", topics=[DIRECTORY_CHANGED], handler=handle,
                      sessions=sessions)


async def test_the_admins_change_is_published_whole_in_its_own_transaction_with_a_growing_version(
        front_door: async_sessionmaker[AsyncSession]) -> None:
    async with front_door() as session:
        assert (await session.execute(select(OutboxRecord))).scalars().all() == []  # seeding publishes nothing
    for provided in (["hospital-referral"], ["hospital-referral", "home-visit"]):
        async with front_door() as session, session.begin():
            await configuration.set_provider(session, org=ZUIDRAND, dispositions=provided, hours="08:00-17:00",
                                             weekdays_only=True, actor="beheer", codesystem_base=CODESYSTEM_BASE)
    with pytest.raises(ValueError):
        async with front_door() as session, session.begin():
            await configuration.set_provider(session, org=ZUIDRAND, dispositions=["teleport"], hours="08:00-17:00",
                                             weekdays_only=True, actor="beheer", codesystem_base=CODESYSTEM_BASE)
    async with front_door() as session:
        rows = list((await session.execute(select(OutboxRecord).order_by(OutboxRecord.seq))).scalars())
    assert [(r.topic, r.key, r.ce_subject) for r in rows] == [
        (DIRECTORY_CHANGED, ZUIDRAND, "HealthcareService/ura-90000010")] * 2
    read = [from_fhir(Event(topic=r.topic, key=r.key, source=r.ce_source, subject=r.ce_subject,
                            data=r.payload).json(), codesystem_base=CODESYSTEM_BASE) for r in rows]
    assert [listing.dispositions for listing, _ in read] == [("hospital-referral",),
                                                            ("hospital-referral", "home-visit")]
    assert all((listing.hours, listing.weekdays_only) == ("08:00-17:00", True) for listing, _ in read)
    assert 1 < read[0][1] < read[1][1]


async def test_entries_the_admin_changed_before_the_directory_was_published_are_published_once_at_start(
        front_door: async_sessionmaker[AsyncSession]) -> None:
    async with front_door() as session, session.begin():
        # As a region upgraded from before directory-changed has it: changed by the admin, still at version 1.
        await session.execute(update(DirectoryEntry).where(DirectoryEntry.org == WIJK).values(
            dispositions="community-nursing", changed_by="beheer"))
    for expected in (1, 0):
        async with front_door() as session, session.begin():
            assert await configuration.announce_earlier_changes(session, codesystem_base=CODESYSTEM_BASE) == expected
    async with front_door() as session:
        rows = list((await session.execute(select(OutboxRecord))).scalars())
    assert [(r.topic, r.key) for r in rows] == [(DIRECTORY_CHANGED, WIJK)]
    listing, version = from_fhir(Event(topic=rows[0].topic, key=rows[0].key, source=rows[0].ce_source,
                                       subject=rows[0].ce_subject, data=rows[0].payload).json(),
                                 codesystem_base=CODESYSTEM_BASE)
    assert listing.dispositions == ("community-nursing",) and version > 1


async def test_the_newest_entry_wins_whatever_order_and_however_often_it_arrives(
        coordination_sessions: async_sessionmaker[AsyncSession]) -> None:
    older = entry(ZUIDRAND, version=5, dispositions=("hospital-referral",))
    newer = entry(ZUIDRAND, version=7, dispositions=("hospital-referral", "home-visit"), hours="17:00-08:00")
    replayed = Event.of(topic=newer.topic, key=newer.key, source=newer.source, subject=newer.subject,
                        payload=newer.json())
    consuming = consumer(coordination_sessions)
    assert await consuming.apply(newer) is True
    assert await consuming.apply(older) is True  # processed, but stale: it changes nothing
    assert await consuming.apply(newer) is False  # a redelivery under the same id
    assert await consuming.apply(replayed) is True  # a replay under a new id: the same version again
    async with coordination_sessions() as session:
        rows = list((await session.execute(select(DirectoryListing))).scalars())
        current = {listing.token: listing for listing in await directory.current(session)}
    assert [(r.org, r.version, r.dispositions, r.hours, r.weekdays_only) for r in rows] == [
        (ZUIDRAND, 7, "hospital-referral home-visit", "17:00-08:00", False)]
    assert current[ZUIDRAND].dispositions == ("hospital-referral", "home-visit")
    # Organisations never heard of keep the region's defaults.
    assert current[WIJK].dispositions == ORG[WIJK].dispositions and current[WIJK].hours == "00:00-24:00"
    assert len(current) == sum(1 for o in ORGANISATIONS if o.kind != "insurer")


async def test_a_value_that_is_not_an_entry_of_the_region_is_poison(
        coordination_sessions: async_sessionmaker[AsyncSession]) -> None:
    insurer = {**entry(ZUIDRAND, version=1, dispositions=()).json(),
               "providedBy": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/uzovi", "value": "9001"}}}
    unversioned = {**entry(ZUIDRAND, version=1, dispositions=()).json(), "meta": {}}
    for value in (insurer, unversioned, {"resourceType": "Basic"}):
        event = Event.of(topic=DIRECTORY_CHANGED, key=ZUIDRAND, source="/test", subject="HealthcareService/x",
                         payload=value)
        async with coordination_sessions() as session:
            with pytest.raises(PoisonMessage):
                await directory.on_directory_changed(session, event, codesystem_base=CODESYSTEM_BASE)


async def test_reassignment_follows_the_received_directory(
        coordination_sessions: async_sessionmaker[AsyncSession], reassign: Reassign) -> None:
    routed = AcuteRequest(id="req-7", pseudonym=PSEUDONYM, patient_id="pat-7", channel="phone",
                          submitted_by=FRONT_DOOR.token, received_at=SATURDAY - timedelta(hours=3), urgency="U3",
                          disposition="home-visit", assigned_org=WIJK, due_at=SATURDAY,
                          triaged_at=SATURDAY - timedelta(hours=2, minutes=50))
    async with coordination_sessions() as session, session.begin():
        await service.on_triage_completed(
            session, triage_events.triage_completed(routed, note="", codesystem_base=CODESYSTEM_BASE,
                                                    traceparent=None, complaint="Valt steeds"),
            codesystem_base=CODESYSTEM_BASE, front_door_fhir_base="https://voordeur.example/fhir")
    async with coordination_sessions() as session:
        task = (await session.execute(select(TaskRecord))).scalars().one()

    with pytest.raises(FhirError) as refused:  # by the region's defaults the hospital makes no home visits
        await reassign(task.id, ZUIDRAND)
    assert "Ziekenhuis Zuidrand does not provide" in refused.value.issues[0].diagnostics

    consuming = consumer(coordination_sessions)
    # The admin: the hospital makes home visits in office hours; the front door makes none any more.
    await consuming.apply(entry(ZUIDRAND, version=3, dispositions=("hospital-referral", "home-visit"),
                                hours="08:00-17:00", weekdays_only=True))
    await consuming.apply(entry(FRONT_DOOR.token, version=3, dispositions=("remote-advice", "onsite-consult")))

    with pytest.raises(FhirError) as not_provided:
        await reassign(task.id, FRONT_DOOR.token)
    assert not_provided.value.status_code == 422
    assert not_provided.value.issues[0].diagnostics.startswith(
        "Spoedzorg Regio Demo does not provide Visite aan huis (home-visit) according to the region's directory; "
        "organisations that do: Huisartsenpraktijk De Linde, Huisartsenpraktijk Het Plein, Ziekenhuis Zuidrand, "
        "Wijkverpleging Oost")
    with pytest.raises(FhirError) as closed:  # its hours from the entry, not the defaults (always open)
        await reassign(task.id, ZUIDRAND)
    assert closed.value.issues[0].diagnostics.startswith(
        "Ziekenhuis Zuidrand is closed at the due time 05-12 11:00 (hours 08:00-17:00, working days only)")
    moved = await reassign(task.id, ZUIDRAND, reason="ziekenhuis stuurt zaterdag de SEH-verpleegkundige")
    assert moved["owner"]["identifier"]["value"] == "90000010"

    # A stale entry arriving late changes nothing: the hospital still makes home visits, now always open.
    await consuming.apply(entry(ZUIDRAND, version=4, dispositions=("hospital-referral", "home-visit")))
    await consuming.apply(entry(ZUIDRAND, version=2, dispositions=("hospital-referral",)))
    back = await reassign(task.id, WIJK)  # never received: the defaults say it makes home visits
    assert back["owner"]["identifier"]["value"] == "90000020"
    again = await reassign(task.id, ZUIDRAND)
    assert again["owner"]["identifier"]["value"] == "90000010"
