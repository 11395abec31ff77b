#!/usr/bin/env python3
"""One-off converter: the facts file and source page -> data/seed/*.jsonl (committed).

Each line is a Create*Request in proto3 JSON, so the loader sends them through the public
API unchanged. Run by hand when the facts change:
  python3 tools/seed/make_seed.py FACTS.json SOURCE.txt data/seed
"""
import json
import re
import sys


def paragraphs_by_event(source_text):
    """The source page's paragraphs grouped under the event they describe (by city)."""
    blocks = re.split(r"\n\s*•\s*Date:.*\n\s*•\s*Location:\s*([^\n]+)\n", source_text)
    out = {}
    for i in range(1, len(blocks), 2):
        city = blocks[i].split(",")[0].strip()
        text = "\n\n".join(p.strip() for p in blocks[i + 1].strip().split("\n\n") if p.strip())
        out[city] = text
    return out


def main(facts_path, source_path, out_dir):
    facts = json.load(open(facts_path))
    descriptions = paragraphs_by_event(open(source_path).read())
    with open(f"{out_dir}/organisations.jsonl", "w") as f:
        for o in facts["organisations"]:
            org = {k: o[k] for k in ("display_name", "acronym", "country_code") if o.get(k)}
            org["kind"] = "ORGANISATION_KIND_" + o["kind"]
            org["process_role"] = "PROCESS_ROLE_" + o["process_role"]
            f.write(json.dumps({"organisationId": o["id"], "organisation": org,
                                "requestId": "seed-organisation-" + o["id"]}) + "\n")
    with open(f"{out_dir}/events.jsonl", "w") as f:
        for e in facts["events"]:
            def date(s):
                y, m, d = (int(x) for x in s.split("-"))
                return {"year": y, "month": m, "day": d}
            ev = {
                "title": e["title"],
                "kind": "EVENT_KIND_" + e["kind"],
                "startDate": date(e["start_date"]),
                "endDate": date(e["end_date"]),
                "location": e["location"],
                "hosts": ["organisations/" + x for x in e["hosts"]],
                "coHosts": ["organisations/" + x for x in e["co_hosts"]],
                "partners": ["organisations/" + x for x in e["partners"]],
                "topics": e["topics"],
                "status": "EVENT_STATUS_" + e["status"],
                "summary": e["summary"],
            }
            if e["location"]["city"] in descriptions:
                ev["description"] = descriptions[e["location"]["city"]]
            if e.get("reported_attendance"):
                ra = e["reported_attendance"]
                ev["reportedAttendance"] = {
                    {"participant_count": "participantCount", "country_count": "countryCount",
                     "organisation_count": "organisationCount"}[k]: v for k, v in ra.items()}
            f.write(json.dumps({"eventId": e["id"], "event": ev,
                                "requestId": "seed-event-" + e["id"]}) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
