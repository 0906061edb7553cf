"""PNG timeline of a plan: which tensor occupies which arena bytes at each step."""
from __future__ import annotations

from .plan import Plan


def plot_plan(plan: Plan, path: str, title: str = "", budget: int | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(11, 5))
    cmap = plt.get_cmap("tab20")
    for i, b in enumerate(plan.buffers):
        ax.add_patch(Rectangle((b.first - 0.45, b.offset / 1024), b.last - b.first + 0.9, b.size / 1024,
                               facecolor=cmap(i % 20), edgecolor="black", linewidth=0.3, alpha=0.85))
        if b.size >= plan.arena_bytes * 0.12 and b.last - b.first >= 2:
            ax.text((b.first + b.last) / 2, (b.offset + b.size / 2) / 1024, b.name, ha="center",
                    va="center", fontsize=7)
    steps = max((b.last for b in plan.buffers), default=0) + 1
    ax.axhline(plan.arena_bytes / 1024, color="black", linestyle="-", linewidth=1,
               label=f"arena {plan.arena_bytes / 1024:.1f} KiB ({plan.policy})")
    ax.axhline(plan.lower_bound / 1024, color="green", linestyle="--", linewidth=1,
               label=f"lower bound {plan.lower_bound / 1024:.1f} KiB")
    # Draw the board budget only when it is on the same scale as the arena;
    # otherwise say it in the title so the plan stays readable.
    note = ""
    if budget and budget <= plan.arena_bytes * 3:
        ax.axhline(budget / 1024, color="red", linestyle=":", linewidth=1.2, label=f"budget {budget / 1024:.0f} KiB")
    elif budget:
        note = f" (budget {budget / 1024:.0f} KiB, {100 * plan.arena_bytes / budget:.0f}% used)"
    ax.set_xlim(-1, steps)
    top = max(plan.arena_bytes, budget if budget and budget <= plan.arena_bytes * 3 else 0) / 1024 * 1.12
    ax.set_ylim(0, top if top > 0 else 1)
    ax.set_xlabel("step (op)")
    ax.set_ylabel("arena offset (KiB)")
    ax.set_title((title or "memory plan") + note)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
