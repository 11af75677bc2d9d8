"""pen demo: the seed's two payment examples, preceded by the votations that
authorise them, on an embedded SQLite CTB, in plain words."""
import json
import tempfile
from pathlib import Path

from pen import build as B
from pen.keys import Signer
from pen.store import SQLiteCTB
from pen_protocol import check, ctb, ids, records as R
from pen.commands.ctb import balances

T0 = 1795000000

# product ids double as account numbers (UNSPSC segment/family/class/commodity + 4 digits of our own)
VALVES = "401416000001"  # 40141600 valves, Supply Hub's own
PIPES = "401715000001"  # 40171500 copper pipes, Supply Hub's own
WORK = "801116000001"  # 80111600 temporary personnel: salaries
EXCHANGE = "841215000001"  # 84121500 banking services: the store's exchange account
FOOD = "501000000001"  # 50100000 food: the store's sales account


def register(sub):
    p = sub.add_parser("demo", help="run the seed's payment examples end to end on an embedded CTB")
    p.add_argument("--json", action="store_true", help="print a summary object instead of the story")
    p.add_argument("--keep", metavar="DIR", help="keep the CTB files in DIR instead of a temporary folder")
    p.add_argument("--year", action="store_true", help="a whole planning year in a small federation (economy)")
    p.add_argument("--out", metavar="DIR", help="--year: folder for the CTB, pictures and credit books "
                                                 "(default ./pen-year)")
    p.set_defaults(func=cmd_demo)


class Story:
    def __init__(self, quiet):
        self.quiet = quiet

    def say(self, text=""):
        if not self.quiet:
            print(text)

    def step(self, text):
        self.say("  - " + text)


def _submit(store, recs):
    verdicts = store.submit([r.raw for r in recs])
    return verdicts


def run(folder, say):
    k = {n: Signer.from_phrase("demo/" + n) for n in (
        "federation", "formosa", "formosa-consumption", "supply-hub", "village-store", "village-consumers",
        "common-node", "carlos")}
    ctb_main = SQLiteCTB(Path(folder) / "ctb.sqlite", clock=lambda: T0)
    summary = {"examples": []}

    say.say("Pen demo: a participatory economy in a valley, and a village store with no internet.\n")
    say.say("1. Founding the economy")
    fed, fp, hub, shop, vc = k["federation"], k["formosa"], k["supply-hub"], k["village-store"], k["village-consumers"]
    councils = [B.council(fed, "Valley Federation", "federation")] + [
        B.council(s, n, kind, fed) for s, n, kind in (
            (fp, "Formosa Plumbing Coop", "production"), (hub, "Supply Hub", "production"),
            (shop, "Village Store", "production"), (vc, "Village Consumers", "consumption"))]
    founders = [fed, fp, hub, vc]
    _submit(ctb_main, councils + [B.genesis(founders, "Valley economy", T0)])
    say.step("councils registered: Valley Federation, Formosa Plumbing Coop, Supply Hub, Village Store, "
             "Village Consumers; the first four found the economy (genesis)")
    op = B.votation_open(fed, 1, "admit", B.membership_about(councils[3]), founders, T0 + 86400)
    votes = [B.vote(s, op.fields[0], c) for s, c in ((fed, "yes"), (fp, "yes"), (hub, "yes"), (vc, "no"))]
    _submit(ctb_main, [op] + votes + [B.votation_close(fed, op, votes, T0 + 86400)])
    say.step("votation: admit the Village Store -> 3 yes, 1 no of 4: passed, the store is a member council")
    _submit(ctb_main, [B.member(fed, k["common-node"], "node"),
                       B.member(fp, k["formosa-consumption"], "member"),
                       B.member(fp, k["carlos"], "member")])
    say.step("the federation certifies its CTB node's key; Formosa certifies its consumption key and Carlos")
    electorate = [fed, fp, hub, shop, vc]

    say.say("\n2. Proof of Majority: authorising the credits")
    prop = B.proposal(fp, 1, 2026, [("40141600", 200, 30000), ("40171500", 500, 25000), ("80111600", 1, 22000)])
    op = B.votation_open(fp, 1, "approve", prop.fields[0], electorate, T0 + 2 * 86400, epoch=1)
    votes = [B.vote(s, op.fields[0], c) for s, c in ((fed, "yes"), (fp, "yes"), (hub, "yes"), (shop, "abstain"))]
    _submit(ctb_main, [prop, op] + votes + [B.votation_close(fp, op, votes, T0 + 2 * 86400)])
    say.step("Formosa proposes 77,000 credits for 2026 (valves 30,000, copper pipes 25,000, salaries 22,000)")
    say.step("votation: 3 yes, 1 abstain, 1 not voting of 5 councils -> passed: Formosa may issue 77,000")
    allowance = B.exchange_about(shop, 20000, EXCHANGE)
    op = B.votation_open(shop, 1, "exchange", allowance, electorate, T0 + 2 * 86400, epoch=1)
    votes = [B.vote(s, op.fields[0], "yes") for s in (fed, fp, vc, shop)]
    _submit(ctb_main, [op] + votes + [B.votation_close(shop, op, votes, T0 + 2 * 86400)])
    allowance_ref = op.fields[0]
    say.step("special votation: the Village Store may issue up to 20,000 credits of change tokens, "
             "against normal credits taken into its exchange account %s -> passed 4 of 5" % EXCHANGE)

    say.say("\n3. Example 1: Formosa Plumbing Coop pays the Supply Hub's invoice")
    tv = B.issue(fp, 1, 30000, prop.fields[0])
    tp = B.issue(fp, 2, 25000, prop.fields[0])
    recs = [tv, tp, B.set_user(fp, tv.fields[0], k["formosa-consumption"]),
            B.set_user(fp, tp.fields[0], k["formosa-consumption"])]
    uv = B.use(k["formosa-consumption"], tv.fields[0], VALVES, VALVES)
    up = B.use(k["formosa-consumption"], tp.fields[0], PIPES, PIPES)
    recs += [uv, up]
    recs += [B.accounted(k["common-node"], tv.fields[0], uv.id, T0 + 3 * 86400),
             B.accounted(k["common-node"], tp.fields[0], up.id, T0 + 3 * 86400)]
    _submit(ctb_main, recs)
    states = [ctb.token_state(ctb_main.get(b"T" + t.fields[0])) for t in (tv, tp)]
    say.step("issued two tokens: 30,000 and 25,000 credits (ISSUED)")
    say.step("user set to the coop's own consumption key, signed by the coop (USABLE)")
    say.step("the consumption key signs product %s (200 valves) and %s (500 m copper pipe) (USED)" % (VALVES, PIPES))
    say.step("the CTB node accounts both: %s" % ", ".join(states))
    ex1_ok = states == [ctb.ACCOUNTED, ctb.ACCOUNTED] and \
        (ctb_main.get(b"A" + ids.pack(VALVES)), ctb_main.get(b"A" + ids.pack(PIPES))) == (30000, 25000)
    summary["examples"].append({"name": "example-1", "ok": ex1_ok, "outcome": "paid 30000 for valves and 25000 for "
                                "copper pipes; both tokens ACCOUNTED", "token_states": states})

    say.say("\n4. Example 2: Carlos pays in the village store, which has no internet")
    salary = B.issue(fp, 3, 10000, prop.fields[0])
    change = [B.issue(shop, i + 1, v, allowance_ref, change=True) for i, v in enumerate((5000, 2000, 2000, 1000))]
    _submit(ctb_main, [salary, B.set_user(fp, salary.fields[0], k["carlos"])] + change)
    say.step("Formosa pays Carlos's salary as a 10,000-credit token with Carlos as user")
    say.step("the store pre-issued change tokens of 5,000, 2,000, 2,000 and 1,000 (ISSUED, not yet in circulation)")
    # the store's phone synchronised this morning, then lost the internet
    phone = SQLiteCTB(Path(folder) / "store-phone.sqlite", clock=lambda: T0)
    phone.submit([raw for _, raw in ctb_main.records()])
    say.step("the store's phone synchronised its CTB copy in the morning (%d records); now it is offline" % phone.count())
    chain = ctb_main.token_history(salary.fields[0])
    ans = check.check_token(phone, salary.fields[0], chain)
    say.step("the attendant checks Carlos's token against the copy: %s (%s)" % (ans.verdict.upper(), ans.reason))
    pay = B.use(k["carlos"], salary.fields[0], EXCHANGE, EXCHANGE)
    ans_pay = check.check_token(phone, salary.fields[0], chain + [pay.raw])
    say.step("Carlos signs the token over to the store's exchange account (his password): %s" % ans_pay.verdict)
    _submit(phone, [pay])
    gives = [B.set_user(shop, c.fields[0], k["carlos"]) for c in change]
    _submit(phone, gives)
    say.step("the store sets Carlos as user of its change tokens 5,000 + 2,000 + 2,000 + 1,000 = 10,000: allowed, "
             "because 10,000 normal credits now sit in its exchange account")
    food = [B.use(k["carlos"], change[2].fields[0], FOOD, FOOD), B.use(k["carlos"], change[3].fields[0], FOOD, FOOD)]
    _submit(phone, food)
    say.step("Carlos pays 3,000 credits of food with the 2,000 and 1,000 change tokens and keeps 7,000 as change")
    # a second try to spend the same salary token elsewhere is evidence
    cheat = B.use(k["carlos"], salary.fields[0], FOOD, FOOD)
    cheat_ans = check.check_token(phone, salary.fields[0], chain + [cheat.raw])
    say.step("if the same token were offered again at this store: %s (%s)" % (cheat_ans.verdict.upper(),
                                                                               cheat_ans.reason))

    say.say("\n5. The phone reconnects and synchronises")
    new = [raw for _, raw in phone.records() if ctb_main.get_record(R.parse(raw).id) is None]
    verdicts = ctb_main.submit(new)
    accepted = sum(v.code == ctb.ACCEPTED for v in verdicts)
    receipts = [B.accounted(k["common-node"], R.parse(r).fields[0], R.parse(r).id, T0 + 4 * 86400)
                for r in new if R.parse(r).type == R.USE]
    _submit(ctb_main, receipts)
    _submit(phone, receipts)
    say.step("uploaded %d records, all accepted; the CTB node returned %d ACCOUNTED receipts" % (accepted, len(receipts)))
    carlos_left = sorted(ctb.token_value(ctb_main.get(b"T" + c.fields[0])) for c in change
                         if ctb.token_state(ctb_main.get(b"T" + c.fields[0])) == ctb.USABLE)
    ex2_ok = (ans.verdict == check.INDETERMINABLE and ans_pay.verdict == check.INDETERMINABLE
              and cheat_ans.verdict == check.INVALID and accepted == len(new)
              and ctb.token_state(ctb_main.get(b"T" + salary.fields[0])) == ctb.ACCOUNTED
              and carlos_left == [2000, 5000] and ctb_main.get(b"A" + ids.pack(FOOD)) == 3000)
    # (section 7 adds the village's payments to the food account afterwards)
    summary["examples"].append({
        "name": "example-2", "ok": ex2_ok,
        "outcome": "offline exchange of a 10000 token for change, 3000 of food paid, 7000 change kept; "
                   "synchronised and accounted",
        "offline_check": ans.verdict, "double_spend_check": cheat_ans.verdict,
        "uploaded": len(new), "receipts": len(receipts), "change_kept": carlos_left})

    village = village_on_the_mesh(folder, say, k, ctb_main, prop, phone)
    summary["village"] = village
    summary["examples"].append({"name": "village-mesh", "ok": village["ok"], "outcome": village["outcome"]})

    say.say("\n7. The books")
    b = balances(ctb_main)
    for name, v in b["tokens_by_state"].items():
        say.step("%-9s %7d credits" % (name, v))
    say.step("spent %d = credited to accounts %d = spent on products %d; issuance within approved amounts: %s; "
             "change covered by exchange: %s" % (b["spent"], b["credited_to_accounts"], b["spent_on_products"],
                                                 b["issuance_within_approved"], b["change_covered_by_exchange"]))
    say.say("\nThe CTB %s." % ("balances" if b["balanced"] else "DOES NOT BALANCE"))
    summary.update(balanced=b["balanced"], books=b, records=ctb_main.count(), state_digest=ctb_main.state_digest(),
                   done=all(e["ok"] for e in summary["examples"]))
    ctb_main.close()
    phone.close()
    return summary


def village_on_the_mesh(folder, say, k, ctb_main, prop, phone):
    """Section 6: villagers pay at stores with no internet; their payments
    cross a LoRa mesh of the firmware's own nodes (simulated radio) to a
    bridge PC, which uploads when the internet comes back; receipts return."""
    from pen.bridge.peers import LocalPeer
    from pen.bridge.queue import BridgeQueue
    from pen.bridge.uploader import PeerUnavailable, Uploader
    from pen.sim.engine import Run
    from pen.sim.medium import Topology
    from pen_protocol.airtime import PRESETS

    say.say("\n6. The whole village: payments over the LoRa mesh, the internet down for 10 minutes")
    fp = k["formosa"]
    villagers = [Signer.from_phrase("demo/villager-%d" % i) for i in range(12)]
    tokens = [B.issue(fp, 10 + i, 1000, prop.fields[0]) for i in range(len(villagers))]
    _submit(ctb_main, tokens + [B.set_user(fp, t.fields[0], v) for t, v in zip(tokens, villagers)])
    # every store phone synchronised in the morning
    phone.submit([raw for _, raw in ctb_main.records() if phone.get_record(R.parse(raw).id) is None])
    say.step("Formosa paid 12 villagers 1,000 credits each; the store phones synchronised in the morning")
    topo = Topology.generate(16, 1, PRESETS["eu868-sf9"], 7)
    stores = [3, 7, 11]
    payments = []
    checks = []
    for i, (v, t) in enumerate(zip(villagers, tokens)):
        use = B.use(v, t.fields[0], FOOD, FOOD)
        checks.append(check.check_token(phone, t.fields[0], [use.raw]).verdict)
        payments.append((60000 + i * 75000, stores[i % len(stores)], use.raw))
    say.step("12 payments at 3 village stores over 15 minutes; each store checks the token offline first: %s" %
             ", ".join(sorted(set(checks))))
    q = BridgeQueue(Path(folder) / "bridge.sqlite", clock=lambda: T0)
    peer = LocalPeer(ctb_main, k["common-node"], clock=lambda: T0 + 5 * 86400)
    up = Uploader(q, "ctb")
    cut_until_ms = 10 * 60000
    log = {"uploaded": 0, "offline_tries": 0, "receipts": 0}

    def bridge_pc(records, now_ms):
        # the simulator's bridge PC (pen.bridge.driver.BridgeCore) has stored
        # them in q before acking the node; this is its upload round
        peer.online = now_ms >= cut_until_ms
        try:
            sent, receipts = up.step(peer)
        except PeerUnavailable:
            log["offline_tries"] += 1
            return []
        log["uploaded"] += sent
        log["receipts"] += len(receipts)
        return receipts

    run = Run(topo, "pen", 0, 20, 7, payments=payments, on_bridge=bridge_pc, bridge_queue=q)
    m = run.run()
    accounted = sum(ctb.token_state(ctb_main.get(b"T" + t.fields[0])) == ctb.ACCOUNTED for t in tokens)
    say.step("the mesh (16 firmware nodes, %d hops deep) carried %d of %d payments to the bridge; p95 %.1f s" % (
        max(topo.hops_to_bridge().values()), m["delivered"], m["offered"], m["p95_latency_s"] or 0))
    say.step("the bridge PC kept them while the internet was down (%d upload attempts waited), then uploaded %d: "
             "%d tokens ACCOUNTED in the CTB" % (log["offline_tries"], log["uploaded"], accounted))
    say.step("%d signed receipts went back down the mesh; %d reached the store that took the payment" % (
        log["receipts"], m["receipts_returned"]))
    # the same token spent again in another village, offline
    cheat_v, cheat_t = villagers[0], tokens[0]
    village_b = SQLiteCTB(Path(folder) / "village-b.sqlite", clock=lambda: T0)
    village_b.submit([raw for _, raw in phone.records()])
    again = B.use(cheat_v, cheat_t.fields[0], PIPES, PIPES)
    b_check = check.check_token(village_b, cheat_t.fields[0], [again.raw]).verdict
    village_b.submit([again.raw])
    new = [raw for _, raw in village_b.records() if ctb_main.get_record(R.parse(raw).id) is None]
    verdicts = ctb_main.submit(new)
    evidence = [v.evidence for v in verdicts if v.code == ctb.CONFLICT]
    signer_named = bool(evidence) and all(
        R.sign.verify(cheat_v.public_key, R.parse(x).signed_message(), R.parse(x).sig)
        for x in evidence[0].fields)
    say.step("villager-0 spends the same token again in village B, offline (B's check: %s); when B's bridge "
             "syncs, the CTB keeps both spends as CONFLICT evidence signed by villager-0's key: %s" % (
                 b_check, "yes" if signer_named else "NO"))
    village_b.close()
    q.close()
    ok = (m["delivered"] == m["offered"] == len(payments) and accounted == len(tokens)
          and m["receipts_returned"] == len(payments) and log["offline_tries"] > 0 and signer_named)
    return {"ok": ok, "outcome": "12 offline payments over a 16-node LoRa mesh, uploaded after a 10-minute outage, "
            "all accounted, receipts returned; a double spend in a second village became evidence",
            "payments": len(payments), "delivered_to_bridge": m["delivered"], "accounted": accounted,
            "receipts_returned": m["receipts_returned"], "p95_latency_s": m["p95_latency_s"],
            "upload_attempts_while_offline": log["offline_tries"], "double_spend_evidence": signer_named,
            "mesh_airtime_per_payment_ms": m["airtime_per_payment_ms"]}


def cmd_demo(args):
    if args.year:
        from pen.economy.year import cmd_year
        return cmd_year(args, Story(args.json))
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        folder = args.keep
        for f in Path(folder).glob("*.sqlite*"):
            f.unlink()
        summary = run(folder, Story(args.json))
    else:
        with tempfile.TemporaryDirectory(prefix="pen-demo-") as folder:
            summary = run(folder, Story(args.json))
    if args.json:
        print(json.dumps(summary, indent=1))
    return 0 if summary["balanced"] and summary["done"] else 1
