/* docs/theory.md §5: mean-only and variance-aware optimisers, the deterministic mix
 * realiser and the dynamic ledger-feedback policy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"
#include "theory.h"

/* Per-option coefficients of the variance: Var(D) = alpha y.p + beta (m.p)^2. */
static double var_alpha(const struct policy_problem *pb)
{
	return pb->arr.mean;
}

static double var_beta(const struct policy_problem *pb)
{
	return pb->how == REALISE_RANDOM ? pb->arr.var - pb->arr.mean : pb->arr.var;
}

static double opt_y(const struct policy_problem *pb, int i)
{
	return pb->how == REALISE_RANDOM ? pb->opts[i].s : pb->opts[i].v;
}

void policy_dense_moments(const struct policy_problem *pb, const double *p,
			  double *mu, double *var, double *acc)
{
	double x = 0.0, y = 0.0, a = 0.0;

	for (int i = 0; i < pb->n_opts; i++) {
		if (!(p[i] > 0.0))
			continue;
		x += p[i] * pb->opts[i].m;
		y += p[i] * opt_y(pb, i);
		a += p[i] * pb->opts[i].acc;
	}
	double q = var_alpha(pb) * y + var_beta(pb) * x * x;
	if (mu)
		*mu = pb->arr.mean * x;
	if (var)
		*var = q > 0.0 ? q : 0.0;
	if (acc)
		*acc = a;
}

void policy_mix_moments(const struct policy_problem *pb, const struct mix *mx,
			double *mu, double *var, double *acc)
{
	double x = 0.0, y = 0.0, a = 0.0;

	for (int i = 0; i < mx->n; i++) {
		x += mx->w[i] * pb->opts[mx->opt[i]].m;
		y += mx->w[i] * opt_y(pb, mx->opt[i]);
		a += mx->w[i] * pb->opts[mx->opt[i]].acc;
	}
	double q = var_alpha(pb) * y + var_beta(pb) * x * x;
	if (mu)
		*mu = pb->arr.mean * x;
	if (var)
		*var = q > 0.0 ? q : 0.0;
	if (acc)
		*acc = a;
}

static int storage_priced(const struct policy_problem *pb)
{
	return pb->storage > 0.0;
}

double policy_volatility_cost(const struct policy_problem *pb, double sigma)
{
	if (!storage_priced(pb))	/* docs/theory.md §4.2 */
		return theory_newsvendor_kappa(pb->c_a, pb->c_w) * sigma;
	if (isinf(pb->storage))		/* docs/theory.md §4.4: per-slot cost vanishes */
		return 0.0;
	/* docs/theory.md §4.3 at delta = 0: aux = waste = sigma^2 / (2 C'), slotted C' */
	double c = pb->storage + 2.0 * THEORY_OVERSHOOT * sigma;
	return (pb->c_a + pb->c_w) * sigma * sigma / (2.0 * c);
}

double policy_objective(const struct policy_problem *pb, const struct mix *mx)
{
	double mu, var;

	policy_mix_moments(pb, mx, &mu, &var, NULL);
	return pb->c_e * mu + policy_volatility_cost(pb, sqrt(var));
}

double policy_objective_dense(const struct policy_problem *pb, const double *p)
{
	double mu, var;

	policy_dense_moments(pb, p, &mu, &var, NULL);
	return pb->c_e * mu + policy_volatility_cost(pb, sqrt(var));
}

/* ---- exact optimisation over pairs and accuracy-binding triples ---- */

struct search {
	const struct policy_problem *pb;
	int variance;			/* 0: mean-only objective, 1: variance-aware */
	double alpha, beta, kappa, ce;	/* ce = c_e E[n] */
	int found;
	double best, best_tie;
	struct mix best_mix;
};

/* A segment of mixes over up to three options: w_j(t) = w0[j] + t w1[j]. */
struct segment {
	int n;
	int opt[3];
	double w0[3], w1[3];
};

static void seg_point(const struct search *s, const struct segment *g, double t,
		      double *x, double *y, double *a)
{
	*x = *y = *a = 0.0;
	for (int j = 0; j < g->n; j++) {
		double w = g->w0[j] + t * g->w1[j];
		const struct task_option *o = &s->pb->opts[g->opt[j]];

		*x += w * o->m;
		*y += w * opt_y(s->pb, g->opt[j]);
		*a += w * o->acc;
	}
}

static void seg_eval(const struct search *s, const struct segment *g, double t,
		     double *obj, double *tie)
{
	double x, y, a;

	seg_point(s, g, t, &x, &y, &a);
	double q = s->alpha * y + s->beta * x * x;
	if (q < 0.0)
		q = 0.0;
	if (!s->variance) {
		*obj = x;
		*tie = q;
		return;
	}
	*obj = s->ce * x + policy_volatility_cost(s->pb, sqrt(q));
	*tie = x;
}

static void take(struct search *s, const struct segment *g, double t)
{
	double obj, tie;

	seg_eval(s, g, t, &obj, &tie);
	double tol = 1e-12 * (fabs(s->best) + fabs(obj)) + 1e-300;
	if (s->found && (obj > s->best + tol || (obj >= s->best - tol && tie >= s->best_tie)))
		return;
	struct mix m = { 0 };
	for (int j = 0; j < g->n; j++) {
		double w = g->w0[j] + t * g->w1[j];
		if (w <= 1e-12)
			continue;
		int k;
		for (k = 0; k < m.n; k++)
			if (m.opt[k] == g->opt[j])
				break;
		if (k == m.n) {
			m.opt[m.n] = g->opt[j];
			m.w[m.n++] = 0.0;
		}
		m.w[k] += w;
	}
	double sum = 0.0;
	for (int k = 0; k < m.n; k++)
		sum += m.w[k];
	if (!(sum > 0.0))
		return;
	for (int k = 0; k < m.n; k++)
		m.w[k] /= sum;
	/* sort by option index for a stable, readable result */
	for (int a = 1; a < m.n; a++)
		for (int b = a; b > 0 && m.opt[b] < m.opt[b - 1]; b--) {
			int ti = m.opt[b]; m.opt[b] = m.opt[b - 1]; m.opt[b - 1] = ti;
			double tw = m.w[b]; m.w[b] = m.w[b - 1]; m.w[b - 1] = tw;
		}
	s->found = 1;
	s->best = obj;
	s->best_tie = tie;
	s->best_mix = m;
}

/* Restrict [lo, hi] to {t : c0 + c1 t >= 0}. */
static void restrict_ge(double c0, double c1, double *lo, double *hi)
{
	if (c1 > 0.0) {
		double t = -c0 / c1;
		if (t > *lo)
			*lo = t;
	} else if (c1 < 0.0) {
		double t = -c0 / c1;
		if (t < *hi)
			*hi = t;
	} else if (c0 < 0.0) {
		*lo = 1.0;
		*hi = 0.0;
	}
}

/* Minimise the objective along the segment for t in [lo, hi]. */
static void search_segment(struct search *s, const struct segment *g, double lo, double hi,
			   int acc_binding)
{
	const struct policy_problem *pb = s->pb;
	double x0, y0, a0, x1, y1, a1;

	seg_point(s, g, 0.0, &x0, &y0, &a0);
	seg_point(s, g, 1.0, &x1, &y1, &a1);
	x1 -= x0;
	y1 -= y0;
	a1 -= a0;
	if (!acc_binding)
		restrict_ge(a0 - pb->acc_target, a1, &lo, &hi);
	if (isfinite(pb->mu_max))	/* E[n] x(t) <= mu_max */
		restrict_ge(pb->mu_max - pb->arr.mean * x0 + 1e-12 * pb->mu_max,
			    -pb->arr.mean * x1, &lo, &hi);
	if (lo > hi)
		return;
	take(s, g, lo);
	if (hi > lo)
		take(s, g, hi);
	if (!s->variance || hi <= lo)
		return;
	if (storage_priced(pb)) {
		/* R is not linear in sigma: bracket on a grid, then golden section */
		const int grid = 16;
		double bt = lo, bo = INFINITY, tie;
		for (int i = 0; i <= grid; i++) {
			double t = lo + (hi - lo) * i / grid, o;
			seg_eval(s, g, t, &o, &tie);
			if (o < bo) {
				bo = o;
				bt = t;
			}
		}
		double a = bt - (hi - lo) / grid, b = bt + (hi - lo) / grid;
		if (a < lo)
			a = lo;
		if (b > hi)
			b = hi;
		const double r = 0.6180339887498949;
		double c = b - r * (b - a), d = a + r * (b - a), fc, fd;
		seg_eval(s, g, c, &fc, &tie);
		seg_eval(s, g, d, &fd, &tie);
		for (int it = 0; it < 60; it++) {
			if (fc < fd) {
				b = d; d = c; fd = fc;
				c = b - r * (b - a);
				seg_eval(s, g, c, &fc, &tie);
			} else {
				a = c; c = d; fc = fd;
				d = a + r * (b - a);
				seg_eval(s, g, d, &fd, &tie);
			}
		}
		take(s, g, 0.5 * (a + b));
		return;
	}
	/* g(t) = ce x(t) + kappa sqrt(A t^2 + B t + C0). Stationary points solve
	 * kappa (2At + B) = -2k sqrt(q), k = ce x1; squared this is the quadratic
	 * 4A(kappa^2 A - k^2) t^2 + 4B(kappa^2 A - k^2) t + kappa^2 B^2 - 4k^2 C0. */
	double A = s->beta * x1 * x1;
	double B = s->alpha * y1 + 2.0 * s->beta * x0 * x1;
	double C0 = s->alpha * y0 + s->beta * x0 * x0;
	double k = s->ce * x1, kap2 = s->kappa * s->kappa;
	double d = kap2 * A - k * k;
	double q2 = 4.0 * A * d, q1 = 4.0 * B * d, q0 = kap2 * B * B - 4.0 * k * k * C0;
	double roots[2];
	int nr = 0;
	if (q2 != 0.0) {
		double disc = q1 * q1 - 4.0 * q2 * q0;
		if (disc >= 0.0) {
			double sq = sqrt(disc);
			double qq = -0.5 * (q1 + (q1 >= 0.0 ? sq : -sq));
			roots[nr++] = qq / q2;
			if (qq != 0.0)
				roots[nr++] = q0 / qq;
		}
	} else if (q1 != 0.0) {
		roots[nr++] = -q0 / q1;
	}
	for (int i = 0; i < nr; i++)
		if (roots[i] > lo && roots[i] < hi)
			take(s, g, roots[i]);
}

/* Options no other option beats on accuracy, mean and variance coefficient at
 * once; the objective is increasing in the mean and the variance, so a
 * dominated option can be swapped out of any mix without loss. */
static int undominated(const struct policy_problem *pb, int *keep)
{
	int n = 0;

	if (var_beta(pb) < 0.0) {	/* monotonicity in the mean fails: keep all */
		for (int i = 0; i < pb->n_opts; i++)
			keep[n++] = i;
		return n;
	}
	for (int j = 0; j < pb->n_opts; j++) {
		const struct task_option *oj = &pb->opts[j];
		int dominated = 0;
		for (int i = 0; i < pb->n_opts && !dominated; i++) {
			if (i == j)
				continue;
			const struct task_option *oi = &pb->opts[i];
			if (oi->acc >= oj->acc && oi->m <= oj->m && opt_y(pb, i) <= opt_y(pb, j)) {
				int equal = oi->acc == oj->acc && oi->m == oj->m &&
					    opt_y(pb, i) == opt_y(pb, j);
				dominated = !equal || i < j;
			}
		}
		if (!dominated)
			keep[n++] = j;
	}
	return n;
}

static int optimise(const struct policy_problem *pb, int variance, struct mix *out)
{
	struct search s = {
		.pb = pb, .variance = variance,
		.alpha = var_alpha(pb), .beta = var_beta(pb),
		.kappa = theory_newsvendor_kappa(pb->c_a, pb->c_w),
		.ce = pb->c_e * pb->arr.mean,
	};
	int *keep = malloc(sizeof(int) * (pb->n_opts > 0 ? pb->n_opts : 1));

	if (!keep)
		return -1;
	int n = undominated(pb, keep);
	struct segment g;

	/* pairs (and single options at their ends), accuracy slack or binding */
	for (int a = 0; a < n; a++)
		for (int b = (n == 1 ? a : a + 1); b < n; b++) {
			int i = keep[a], j = keep[b];
			g = (struct segment){ .n = 2, .opt = { i, j },
					      .w0 = { 1.0, 0.0 }, .w1 = { -1.0, 1.0 } };
			search_segment(&s, &g, 0.0, 1.0, 0);
		}
	/* triples with the accuracy constraint binding: the line acc.p = a*
	 * crosses the triangle in a segment between two of its edges */
	if (variance) {
		for (int a = 0; a < n; a++)
			for (int b = a + 1; b < n; b++)
				for (int c = b + 1; c < n; c++) {
					int id[3] = { keep[a], keep[b], keep[c] };
					double d[3], pts[3][3];
					int np = 0;
					for (int j = 0; j < 3; j++)
						d[j] = pb->opts[id[j]].acc - pb->acc_target;
					for (int u = 0; u < 3; u++)
						for (int v = u + 1; v < 3; v++) {
							if (!((d[u] < 0.0 && d[v] > 0.0) ||
							      (d[u] > 0.0 && d[v] < 0.0)))
								continue;
							double t = d[u] / (d[u] - d[v]);
							double *p = pts[np++];
							p[0] = p[1] = p[2] = 0.0;
							p[u] = 1.0 - t;
							p[v] = t;
						}
					for (int u = 0; u < 3 && np < 3; u++)
						if (d[u] == 0.0) {
							double *p = pts[np++];
							p[0] = p[1] = p[2] = 0.0;
							p[u] = 1.0;
						}
					if (np != 2)
						continue;	/* a point (pairs cover it) or the whole face */
					g.n = 3;
					for (int j = 0; j < 3; j++) {
						g.opt[j] = id[j];
						g.w0[j] = pts[0][j];
						g.w1[j] = pts[1][j] - pts[0][j];
					}
					search_segment(&s, &g, 0.0, 1.0, 1);
				}
	}
	free(keep);
	if (!s.found)
		return -1;
	*out = s.best_mix;
	return 0;
}

int policy_mean_only(const struct policy_problem *pb, struct mix *out)
{
	return optimise(pb, 0, out);
}

int policy_variance_aware(const struct policy_problem *pb, struct mix *out)
{
	return optimise(pb, 1, out);
}

/* ---- smooth weighted round robin ---- */

int swrr_init(struct swrr *rr, const int *opt, const double *w, int n)
{
	memset(rr, 0, sizeof(*rr));
	if (n < 1 || n > SWRR_MAX)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!(w[i] > 0.0))
			continue;
		rr->opt[rr->n] = opt[i];
		rr->w[rr->n++] = w[i];
		rr->total += w[i];
	}
	return rr->n ? 0 : -1;
}

int swrr_init_mix(struct swrr *rr, const struct mix *mx)
{
	return swrr_init(rr, mx->opt, mx->w, mx->n);
}

int swrr_next(struct swrr *rr)
{
	int best = 0;

	/* every candidate gains its weight, the leader pays the total back */
	for (int i = 0; i < rr->n; i++) {
		rr->cur[i] += rr->w[i];
		if (rr->cur[i] > rr->cur[best])
			best = i;
	}
	rr->cur[best] -= rr->total;
	return rr->opt[best];
}

/* ---- dynamic ledger-feedback policy ---- */

static int by_mean(const void *a, const void *b, void *ctx)
{
	const struct task_option *o = ctx;
	const struct task_option *x = &o[*(const int *)a], *y = &o[*(const int *)b];

	if (x->m != y->m)
		return x->m < y->m ? -1 : 1;
	if (x->acc != y->acc)
		return x->acc > y->acc ? -1 : 1;
	return *(const int *)a - *(const int *)b;
}

int policy_ladder(const struct task_option *opts, int n, struct ladder *out)
{
	memset(out, 0, sizeof(*out));
	if (n < 1)
		return -1;
	int *idx = malloc(sizeof(int) * n);
	if (!idx)
		return -1;
	for (int i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(int), by_mean, (void *)opts);
	/* Pareto (accuracy strictly up as the mean goes up), then the upper
	 * concave hull of (m, acc): the mixes mean-only routing can choose. */
	for (int k = 0; k < n; k++) {
		const struct task_option *o = &opts[idx[k]];
		if (out->n && o->acc <= out->acc[out->n - 1])
			continue;
		while (out->n >= 2) {
			double x1 = out->m[out->n - 2], y1 = out->acc[out->n - 2];
			double x2 = out->m[out->n - 1], y2 = out->acc[out->n - 1];
			/* drop the middle point if it lies on or below the chord */
			if ((y2 - y1) * (o->m - x1) <= (o->acc - y1) * (x2 - x1))
				out->n--;
			else
				break;
		}
		if (out->n == LADDER_MAX)
			break;
		out->opt[out->n] = idx[k];
		out->m[out->n] = o->m;
		out->acc[out->n] = o->acc;
		out->v[out->n] = o->v;
		out->n++;
	}
	free(idx);
	return 0;
}

double ladder_acc_at(const struct ladder *l, double m)
{
	if (l->n == 0)
		return 0.0;
	if (m <= l->m[0])
		return l->acc[0];
	if (m >= l->m[l->n - 1])
		return l->acc[l->n - 1];
	int lo = 0, hi = l->n - 1;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (l->m[mid] <= m)
			lo = mid;
		else
			hi = mid;
	}
	double f = (m - l->m[lo]) / (l->m[hi] - l->m[lo]);
	return l->acc[lo] + f * (l->acc[hi] - l->acc[lo]);
}

/* Mean energy per task at which the frontier reaches accuracy a. */
double ladder_m_at(const struct ladder *l, double a)
{
	if (l->n == 0)
		return 0.0;
	if (a <= l->acc[0])
		return l->m[0];
	if (a >= l->acc[l->n - 1])
		return l->m[l->n - 1];
	int lo = 0, hi = l->n - 1;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (l->acc[mid] <= a)
			lo = mid;
		else
			hi = mid;
	}
	double f = (a - l->acc[lo]) / (l->acc[hi] - l->acc[lo]);
	return l->m[lo] + f * (l->m[hi] - l->m[lo]);
}

/* ---- the decision table: dynamic programming over the slot ---- */

/* Rows of the table in expected remaining tasks, and columns in
 * committed - supply (J). */
#define TABLE_ROWS_MAX 400
#define TABLE_COLS 801
/* Above this many tasks per slot one arrival per row no longer holds. */
#define TABLE_MAX_TASKS 100.0

/* E[c_a (x+Z)^+ + c_w (x+Z)^-], Z ~ N(0, s^2): the slot's expected cost
 * when its committed energy is x J over supply and the reasoning lengths
 * are still to come. */
static double terminal_cost(double x, double s, double c_a, double c_w)
{
	if (!(s > 0.0))
		return x > 0.0 ? c_a * x : -c_w * x;
	double z = x / s;
	double pos = x * 0.5 * erfc(-z / M_SQRT2) + s * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
	return c_a * pos + c_w * (pos - x);
}

/* v at column pos; beyond the grid the cost grows at the price of aux
 * (above) or of waste (below), per column. */
static double interp(const double *v, int n, double pos, double up, double down)
{
	if (pos <= 0.0)
		return v[0] - pos * down;
	if (pos >= n - 1)
		return v[n - 1] + (pos - (n - 1)) * up;
	int i = (int)pos;
	double f = pos - i;
	return v[i] + f * (v[i + 1] - v[i]);
}

/* One solve at accuracy price `price`: fills t->rung and returns the
 * expected accuracy per task of a slot starting at committed = 0. */
static double table_solve(struct dyn_table *t, const struct ladder *l, double price,
			  double tasks, double supply, double s, double c_a, double c_w,
			  double *work)
{
	double *v = work, *nv = work + TABLE_COLS, *a = work + 2 * TABLE_COLS,
	       *na = work + 3 * TABLE_COLS;
	double p = t->r_step;		/* an arrival in one row (r_step <= 1) */
	double up = c_a * t->x_step, down = c_w * t->x_step;
	double pen[LADDER_MAX], base_v = s * s / tasks;

	for (int j = 0; j < TABLE_COLS; j++) {
		v[j] = terminal_cost(t->x_lo + j * t->x_step, s, c_a, c_w);
		a[j] = 0.0;
	}
	for (int r = 0; r < t->n_r; r++) {
		/* the choice of a task arriving with r rows of the slot left */
		unsigned char *row = t->rung + (size_t)r * TABLE_COLS;
		/* a rung's reasoning-length variance beyond the typical task's
		 * widens the slot's end spread: E|D-b| grows by var/2 times its
		 * curvature at balance, (c_a+c_w) phi(0) / s */
		double spread = s;
		for (int k = 0; k < l->n; k++)
			pen[k] = spread > 0.0 ? 0.5 * (l->v[k] - base_v) * (c_a + c_w) * 0.3989422804 / spread : 0.0;
		for (int j = 0; j < TABLE_COLS; j++) {
			double best = INFINITY, best_a = 0.0;
			int bk = 0;
			for (int k = 0; k < l->n; k++) {
				double pos = j + l->m[k] / t->x_step;
				double c = interp(v, TABLE_COLS, pos, up, down) - price * l->acc[k] + pen[k];
				if (c < best) {
					best = c;
					bk = k;
					best_a = l->acc[k] + interp(a, TABLE_COLS, pos, 0.0, 0.0);
				}
			}
			row[j] = (unsigned char)bk;
			nv[j] = p * best + (1.0 - p) * v[j];
			na[j] = p * best_a + (1.0 - p) * a[j];
		}
		double *tv = v; v = nv; nv = tv;
		double *ta = a; a = na; na = ta;
	}
	double start = (-supply - t->x_lo) / t->x_step;
	return interp(a, TABLE_COLS, start, 0.0, 0.0) / (t->n_r * t->r_step);
}

int policy_dynamic_table(struct dyn_table *t, const struct ladder *l, double acc_target,
			 double tasks, double supply, double noise_var, double c_a, double c_w)
{
	memset(t, 0, sizeof(*t));
	if (l->n < 1 || l->n > 256 || !(tasks > 0.0) || tasks > TABLE_MAX_TASKS || !(supply > 0.0))
		return -1;
	double s = noise_var > 0.0 ? sqrt(noise_var) : 0.0;
	t->n_r = TABLE_ROWS_MAX;
	t->r_step = tasks / t->n_r;
	double span = 2.0 * supply + 8.0 * s + 2.0 * l->m[l->n - 1];
	t->x_lo = -span;
	t->x_step = 2.0 * span / (TABLE_COLS - 1);
	t->n_x = TABLE_COLS;
	t->rung = malloc((size_t)t->n_r * TABLE_COLS);
	double *work = malloc(sizeof(double) * 4 * TABLE_COLS);
	if (!t->rung || !work) {
		free(work);
		policy_dynamic_table_free(t);
		return -1;
	}
	/* the least price whose policy meets the target (log bisection) */
	double lo = 1e-3, hi = 1e12;
	for (int it = 0; it < 40 && hi / lo > 1.001; it++) {
		double mid = sqrt(lo * hi);
		if (table_solve(t, l, mid, tasks, supply, s, c_a, c_w, work) >= acc_target)
			hi = mid;
		else
			lo = mid;
	}
	t->price = hi;
	t->achieved = table_solve(t, l, hi, tasks, supply, s, c_a, c_w, work);
	free(work);
	/* energy per task to move the accuracy by one unit at the target */
	double m0 = ladder_m_at(l, acc_target - 0.01), m1 = ladder_m_at(l, acc_target + 0.01);
	t->j_per_acc = (m1 - m0) / 0.02;
	t->tasks = tasks;
	return 0;
}

void policy_dynamic_table_free(struct dyn_table *t)
{
	free(t->rung);
	t->rung = NULL;
}

void policy_dynamic(const struct dyn_policy *dp, const struct dyn_input *in, struct dyn_choice *out)
{
	const struct ladder *l = &dp->ladder;
	double tasks = in->tasks_left > 1.0 ? in->tasks_left : 1.0;

	double h = dp->horizon_tasks > 1.0 ? dp->horizon_tasks : 1.0;
	double shift = in->acc_credit / h;
	if (shift > dp->max_dip)
		shift = dp->max_dip;
	if (shift < -dp->max_dip)
		shift = -dp->max_dip;

	const struct dyn_table *t = dp->table;
	if (t && t->rung) {
		/* credit makes the slot look poorer, debt richer */
		double x = -in->supply_left + shift * t->j_per_acc * t->tasks;
		double r = (in->tasks_left - 1.0) / t->r_step;
		double c = (x - t->x_lo) / t->x_step;
		int ri = r <= 0.0 ? 0 : r >= t->n_r - 1 ? t->n_r - 1 : (int)(r + 0.5);
		int ci = c <= 0.0 ? 0 : c >= t->n_x - 1 ? t->n_x - 1 : (int)(c + 0.5);
		int k = t->rung[(size_t)ri * t->n_x + ci];
		out->opt = l->opt[k];
		out->goal = l->acc[k];
		out->dither = in->dither;
		return;
	}

	/* What the supply left in this slot affords per remaining task... */
	double afford = ladder_acc_at(l, in->supply_left / tasks);
	/* ...but never below the floor that repays accuracy debt (or spends
	 * banked credit) over the horizon. */
	double goal = afford > dp->acc_target - shift ? afford : dp->acc_target - shift;
	if (goal < l->acc[0])
		goal = l->acc[0];
	if (goal > l->acc[l->n - 1])
		goal = l->acc[l->n - 1];

	/* First-order error diffusion between the two rungs around the goal:
	 * the sequence of choices averages to the goals without coin flips. */
	/* Only the two rungs around the goal are used: their chord is the
	 * frontier, any other pair costs more energy for the same accuracy. */
	int r = 0;
	while (r + 2 < l->n && l->acc[r + 1] <= goal)
		r++;
	double want = goal + in->dither;
	int pick = r;
	if (r + 1 < l->n && want >= 0.5 * (l->acc[r] + l->acc[r + 1]))
		pick = r + 1;
	out->opt = l->opt[pick];
	out->goal = goal;
	out->dither = want - l->acc[pick];
}
