/* erg sim --svg and --series. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "sim_chart.h"
#include "svg.h"

#define MAX_SERIES (3 * SIM_NPOL + 2)

enum { K_AUX, K_WASTE, K_COST, NKIND };

struct chart_data {
	double unit;			/* 1 (J) or 1000 (kJ) */
	int per;			/* points per series: the levels */
	double *buf;			/* x, closed-form aux and waste, then 3 per policy */
	struct svg_series ss[MAX_SERIES];
	char labels[MAX_SERIES][96];
	int ns;
};

static const char *const long_name[SIM_NPOL] = { "mean-only", "variance-aware", "dynamic" };
static const char *const kind_name[NKIND] = { "auxiliary", "waste", "cost" };

/* Policy q's series of one kind: aux and waste in chart units, cost in
 * price units (it has its own panel). */
static double *series_y(const struct chart_data *d, int q, int kind)
{
	return d->buf + d->per * (3 + 3 * q + kind);
}

static void fill_policy(struct chart_data *d, const struct sim_plan *p, int q)
{
	double *ta = d->buf + d->per, *tw = d->buf + 2 * d->per;
	double *ya = series_y(d, q, K_AUX), *yw = series_y(d, q, K_WASTE), *yc = series_y(d, q, K_COST);

	for (int i = 0, l = 0; i < p->n_jobs; i++) {
		const struct sim_job *j = &p->jobs[i];
		if (!j->sweep || j->policy != q)
			continue;
		ya[l] = j->sum.aux / d->unit;
		yw[l] = j->sum.waste / d->unit;
		yc[l] = j->sum.cost;
		if (q == SIM_P_MEAN) {
			ta[l] = j->sum.aux_theory / d->unit;
			tw[l] = j->sum.waste_theory / d->unit;
		}
		l++;
	}
}

/* Whether two series are one curve: equal to 1e-9 relative at every level. */
static bool same_curve(const double *a, const double *b, int n)
{
	for (int l = 0; l < n; l++) {
		if (isnan(a[l]) != isnan(b[l]))
			return false;
		if (!isnan(a[l]) && !(fabs(a[l] - b[l]) <= 1e-9 * fmax(fabs(a[l]), fabs(b[l]))))
			return false;
	}
	return true;
}

/* One curve per distinct series: a policy whose curve of a kind equals an
 * earlier policy's joins that legend entry ("mean-only = variance-aware:
 * waste") instead of drawing a second line under the first. Variance-aware
 * curves of their own are drawn first, wide and pale, so that where they
 * meet mean-only both stay visible. */
static void policy_series(struct chart_data *d, const struct sim_plan *p)
{
	static const char *const colors[SIM_NPOL] = { "#1f77b4", "#d62728", "#2ca02c" };
	static const int order[SIM_NPOL] = { SIM_P_MEAN, SIM_P_VARIANCE, SIM_P_DYNAMIC };
	static const int draw_order[SIM_NPOL] = { SIM_P_VARIANCE, SIM_P_MEAN, SIM_P_DYNAMIC };
	char names[SIM_NPOL][NKIND][80];
	int owner[SIM_NPOL][NKIND];	/* the policy whose curve this one is, or -1 */
	bool on[SIM_NPOL] = { false };

	for (int k = 0; k < SIM_NPOL; k++) {
		int q = order[k];

		on[q] = (p->policies & sim_policy_bit[q]) != 0;
		if (on[q])
			fill_policy(d, p, q);
	}
	for (int k = 0; k < SIM_NPOL; k++) {
		int q = order[k];

		for (int kind = 0; kind < NKIND; kind++) {
			owner[q][kind] = -1;
			snprintf(names[q][kind], sizeof(names[q][kind]), "%s", long_name[q]);
			if (!on[q])
				continue;
			for (int e = 0; e < k && owner[q][kind] < 0; e++) {
				int r = order[e];

				if (on[r] && owner[r][kind] < 0 &&
				    same_curve(series_y(d, r, kind), series_y(d, q, kind), d->per)) {
					owner[q][kind] = r;
					size_t used = strlen(names[r][kind]);
					snprintf(names[r][kind] + used, sizeof(names[r][kind]) - used, " = %s",
						 long_name[q]);
				}
			}
		}
	}
	for (int k = 0; k < SIM_NPOL; k++) {
		int q = draw_order[k];

		for (int kind = 0; kind < NKIND && on[q]; kind++) {
			if (owner[q][kind] >= 0)
				continue;
			bool pale = q == SIM_P_VARIANCE;

			snprintf(d->labels[d->ns], sizeof(d->labels[0]), "%s: %s", names[q][kind], kind_name[kind]);
			d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], d->buf, series_y(d, q, kind), d->per,
							    colors[q], kind == K_WASTE, kind != K_COST,
							    pale ? 5.0 : 2.0, pale ? 0.45 : 1.0,
							    kind == K_COST };
			d->ns++;
		}
	}
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
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, ta, per, "#000000", 0, 0, 1.0, 0.7, 0 };
	d->ns++;
	snprintf(d->labels[d->ns], sizeof(d->labels[0]), "mean-only: closed form, waste");
	d->ss[d->ns] = (struct svg_series){ d->labels[d->ns], xs, tw, per, "#000000", 1, 0, 1.0, 0.7, 0 };
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
	for (size_t i = 0; i < (size_t)d.per * (3 + 3 * SIM_NPOL); i++)
		d.buf[i] = NAN;		/* a policy with fewer levels breaks its line */
	for (int l = 0; l < d.per; l++)
		d.buf[l] = p->levels[l] / d.unit;
	policy_series(&d, p);
	if (p->policies & POLICY_MEAN)
		theory_series(&d);
	char xl[96], yl[96], yl2[96], title[160], sub[200], mark[96];
	snprintf(xl, sizeof(xl), "baseline supply b (%s per %g s slot)", ustr, sc->slot_seconds);
	snprintf(yl, sizeof(yl), "energy per slot (%s)", ustr);
	snprintf(yl2, sizeof(yl2), "cost per slot (price units)");
	snprintf(title, sizeof(title), "erg sim %s: auxiliary energy, waste and cost against supply", sc->name);
	snprintf(sub, sizeof(sub), "accuracy target %.2f, %s, %ld slots per point, sigma %.0f J at b*; "
		 "cost = %g x aux + %g x waste (J)", sc->acc_target, h->storage_desc, sc->slots, p->sigma_ref,
		 sc->c_a, sc->c_w);
	snprintf(mark, sizeof(mark), "b* = mu = %.4g %s (critical)", p->bstar / d.unit, ustr);
	struct svg_chart ch = { .title = title, .subtitle = sub, .xlabel = xl, .ylabel = yl, .ylabel2 = yl2,
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
