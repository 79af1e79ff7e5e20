/* erg sim --svg and --series. */
#include <math.h>
#include <stdlib.h>
#include "sim_chart.h"
#include "svg.h"

#define MAX_SERIES (3 * SIM_NPOL + 2)

struct chart_data {
	double unit;			/* 1 (J) or 1000 (kJ) */
	int per;			/* points per series: the levels */
	double *buf;			/* x, closed-form aux and waste, then 3 per policy */
	struct svg_series ss[MAX_SERIES];
	char labels[MAX_SERIES][96];
	int ns;
};

/* One policy's aux, waste and cost over the sweep, in chart units. */
static void policy_series(struct chart_data *d, const struct sim_plan *p, const struct sim_headline *h, int q)
{
	static const char *const colors[SIM_NPOL] = { "#1f77b4", "#d62728", "#2ca02c" };
	static const char *const long_name[SIM_NPOL] = { "mean-only", "variance-aware", "dynamic" };
	int per = d->per;
	double *xs = d->buf, *ta = d->buf + per, *tw = d->buf + 2 * per;
	double *ya = d->buf + per * (3 + 3 * q), *yw = ya + per, *yc = yw + per;

	for (int i = 0, l = 0; i < p->n_jobs; i++) {
		const struct sim_job *j = &p->jobs[i];
		if (!j->sweep || j->policy != q)
			continue;
		ya[l] = j->sum.aux / d->unit;
		yw[l] = j->sum.waste / d->unit;
		yc[l] = j->sum.cost / d->unit;
		if (q == SIM_P_MEAN) {
			ta[l] = j->sum.aux_theory / d->unit;
			tw[l] = j->sum.waste_theory / d->unit;
		}
		l++;
	}
	double w = q == SIM_P_VARIANCE ? 5.0 : 2.0, op = q == SIM_P_VARIANCE ? 0.45 : 1.0;
	const char *note = q == SIM_P_VARIANCE && h->same ? " (= mean-only)" : "";
	snprintf(d->labels[d->ns], sizeof(d->labels[0]), "%s: auxiliary%s", long_name[q], note);
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, ya, per, colors[q], 0, 1, w, op };
	d->ns++;
	snprintf(d->labels[d->ns], sizeof(d->labels[0]), "%s: waste", long_name[q]);
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, yw, per, colors[q], 1, 1, w, op };
	d->ns++;
	snprintf(d->labels[d->ns], sizeof(d->labels[0]), "%s: cost", long_name[q]);
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, yc, per, colors[q], 0, 0,
					    q == SIM_P_VARIANCE ? 3.0 : 1.0, op };
	d->ns++;
}

/* Mean-only's closed forms, where any applies. */
static void theory_series(struct chart_data *d)
{
	int per = d->per, any = 0;
	double *xs = d->buf, *ta = d->buf + per, *tw = d->buf + 2 * per;

	for (int l = 0; l < per; l++)
		any |= isfinite(ta[l]);
	if (!any)
		return;
	snprintf(d->labels[d->ns], sizeof(d->labels[0]), "mean-only: closed form, aux");
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, ta, per, "#000000", 0, 0, 1.0, 0.7 };
	d->ns++;
	snprintf(d->labels[d->ns], sizeof(d->labels[0]), "mean-only: closed form, waste");
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, tw, per, "#000000", 1, 0, 1.0, 0.7 };
	d->ns++;
}

int sim_chart_svg(FILE *f, const struct sim_plan *p, const struct sim_headline *h)
{
	const struct scenario *sc = p->sc;
	struct chart_data d = { .unit = p->bstar >= 1e4 ? 1000.0 : 1.0, .per = p->n_levels };
	const char *ustr = d.unit > 1.0 ? "kJ" : "J";

	d.buf = calloc((size_t)d.per * (3 + 3 * SIM_NPOL), sizeof(double));
	if (!d.buf) {
		fclose(f);
		return -2;
	}
	for (int l = 0; l < d.per; l++) {
		d.buf[l] = p->levels[l] / d.unit;
		d.buf[d.per + l] = d.buf[2 * d.per + l] = NAN;
	}
	/* variance-aware first, wide and pale, so that where it equals
	 * mean-only both stay visible */
	static const int draw_order[SIM_NPOL] = { SIM_P_VARIANCE, SIM_P_MEAN, SIM_P_DYNAMIC };
	for (int k = 0; k < SIM_NPOL; k++)
		if (p->policies & sim_policy_bit[draw_order[k]])
			policy_series(&d, p, h, draw_order[k]);
	if (p->policies & POLICY_MEAN)
		theory_series(&d);
	char xl[96], yl[96], title[160], sub[200], mark[96];
	snprintf(xl, sizeof(xl), "baseline supply b (%s per %g s slot)", ustr, sc->slot_seconds);
	snprintf(yl, sizeof(yl), "energy per slot (%s)", ustr);
	snprintf(title, sizeof(title), "erg sim %s: auxiliary energy and waste against supply", sc->name);
	snprintf(sub, sizeof(sub), "accuracy target %.2f, %s, %ld slots per point, sigma %.0f J at b*; "
		 "cost = c_a aux + c_w waste (thin)", sc->acc_target, h->storage_desc, sc->slots, p->sigma_ref);
	snprintf(mark, sizeof(mark), "b* = mu = %.4g %s (critical)", p->bstar / d.unit, ustr);
	struct svg_chart ch = { .title = title, .subtitle = sub, .xlabel = xl, .ylabel = yl,
				.marker_x = p->bstar / d.unit, .marker_label = mark };
	int bad = svg_write(f, &ch, d.ss, d.ns) != 0;
	bad |= fclose(f) != 0;
	free(d.buf);
	return bad ? -1 : 0;
}

int sim_chart_series(FILE *f, const struct sim_plan *p, const struct sim_slot *series)
{
	long slots = p->sc->slots;

	fprintf(f, "policy,slot,arrivals,demand_j,supply_j,aux_j,waste_j,storage_j,accuracy\n");
	for (int i = 0; i < p->n_jobs; i++) {
		if (!p->jobs[i].sweep)
			continue;
		for (long t = 0; t < slots; t++) {
			const struct sim_slot *s = &series[(size_t)i * slots + t];
			fprintf(f, "%s,%ld,%.0f,%.3f,%.3f,%.3f,%.3f,%.3f,%.6f\n", sim_policy_name[p->jobs[i].policy],
				t, s->arrivals, s->demand, s->supply, s->aux, s->waste, s->storage,
				isfinite(s->accuracy) ? s->accuracy : 0.0);
		}
	}
	return (ferror(f) | fclose(f)) ? -1 : 0;
}
