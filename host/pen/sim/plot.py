"""`pen sim --plot FILE`: goodput and on-time delivery against offered load,
Pen and the baseline, one line per seed (matplotlib, an optional extra)."""


def plot(outs, path):
    """outs: scenario.run outputs (one per seed) with their sweeps."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"pen": "tab:blue", "baseline": "tab:orange"}
    for k, out in enumerate(outs):
        seed = out["scenario"]["seed"]
        marker = "osD^v<>ph*"[k % 10]  # one marker per seed, one colour per scheme
        for key in ("pen", "baseline"):
            sw = out[key]["sweep"]
            if not sw:
                continue
            loads = sorted(sw, key=float)
            x = [float(ld) for ld in loads]
            label = "%s, seed %d" % ("Pen" if key == "pen" else out[key]["name"], seed)
            ax1.plot(x, [sw[ld]["goodput_per_hour"] for ld in loads], marker=marker, color=colours[key],
                     alpha=0.4 + 0.6 / len(outs), label=label)
            ax2.plot(x, [100 * sw[ld]["on_time_ratio"] for ld in loads], marker=marker, color=colours[key],
                     alpha=0.4 + 0.6 / len(outs), label=label)
    lim = max([float(ld) for o in outs for k in ("pen", "baseline") for ld in o[k]["sweep"]] or [1])
    ax1.plot([0, lim], [0, lim], color="grey", linestyle=":", label="everything on time")
    ax1.set_xlabel("offered payments per hour")
    ax1.set_ylabel("payments per hour at a bridge within 120 s")
    ax1.set_title("goodput")
    ax2.axhline(99, color="grey", linestyle=":", label="service level (99 %)")
    ax2.set_xlabel("offered payments per hour")
    ax2.set_ylabel("% of payments within 120 s")
    ax2.set_title("on-time delivery")
    ax2.set_ylim(0, 101)
    md = outs[0]["scenario"]["medium"]
    fig.suptitle("%s, %d nodes; links %s, CAD %s, interference %s" % (
        outs[0]["scenario"]["preset"], outs[0]["scenario"]["nodes"], md["links"], md["cad"], md["interference"]))
    ax1.legend(fontsize="small")
    ax2.legend(handles=ax2.get_lines()[-1:], fontsize="small", loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
