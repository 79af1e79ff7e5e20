/* SVG line charts for erg sim --svg. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "svg.h"

double svg_nice_step(double range, int ticks)
{
	if (!(range > 0.0) || !isfinite(range) || ticks < 1)
		return 1.0;
	double raw = range / ticks;
	double p = pow(10.0, floor(log10(raw)));
	double f = raw / p;
	double nice = f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0;
	double step = nice * p;
	return step > 0.0 && isfinite(step) ? step : 1.0;	/* subnormal ranges */
}

static void put_escaped(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* Tick label without float noise: as many decimals as the step needs. */
static void tick_label(char *buf, size_t len, double v, double step)
{
	double want = step >= 1.0 ? 0.0 : ceil(-log10(step) - 1e-9);
	int dec = want < 6.0 ? (int)want : 6;	/* bounded before the conversion */
	if (fabs(v) < step * 1e-9)
		v = 0.0;
	snprintf(buf, len, "%.*f", dec, v);
}

/* Most grid lines per axis: a range too small for its magnitude (the step
 * lost in rounding) stops here instead of looping. */
#define MAX_TICKS 100

/* Plot area and data ranges. */
struct frame {
	double left, top, pw, ph;
	double x0, x1, y0, y1, xs, ys;
};

static double px(const struct frame *fr, double x)
{
	return fr->left + (x - fr->x0) / (fr->x1 - fr->x0) * fr->pw;
}

static double py(const struct frame *fr, double y)
{
	return fr->top + fr->ph - (y - fr->y0) / (fr->y1 - fr->y0) * fr->ph;
}

/* Data ranges rounded out to nice steps: x over every series (the panels
 * share it), y over the panel's. -1 when the panel has no drawable point. */
static int fit_frame(struct frame *fr, const struct svg_chart *c, const struct svg_series *s, int ns,
		     int panel)
{
	double x0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
	int points = 0;

	for (int i = 0; i < ns; i++)
		for (int k = 0; k < s[i].n; k++) {
			if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k]))
				continue;
			x0 = fmin(x0, s[i].x[k]);
			x1 = fmax(x1, s[i].x[k]);
			if (s[i].panel != panel)
				continue;
			y1 = fmax(y1, s[i].y[k]);
			points++;
		}
	if (!points)
		return -1;
	if (isfinite(c->marker_x)) {
		x0 = fmin(x0, c->marker_x);
		x1 = fmax(x1, c->marker_x);
	}
	if (x1 <= x0) {
		x0 -= 0.5;
		x1 += 0.5;
	}
	fr->y0 = 0.0;
	if (!(y1 > 0.0))
		y1 = 1.0;
	fr->xs = svg_nice_step(x1 - x0, 8);
	fr->ys = svg_nice_step(y1 - fr->y0, 6);
	fr->x0 = floor(x0 / fr->xs) * fr->xs;
	fr->x1 = ceil(x1 / fr->xs) * fr->xs;
	fr->y1 = ceil(y1 * 1.02 / fr->ys) * fr->ys;
	if (!(fr->x1 > fr->x0))		/* a step lost in rounding */
		fr->x1 = fr->x0 + fr->xs;
	if (!(fr->y1 > fr->y0))
		fr->y1 = fr->y0 + fr->ys;
	return 0;
}

static void write_title(FILE *f, const struct svg_chart *c, const struct frame *fr, int W, int H)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n"
		   "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H, W, H, W, H);
	fprintf(f, "<text x=\"%g\" y=\"28\" font-size=\"17\" font-weight=\"bold\">", fr->left);
	put_escaped(f, c->title);
	fputs("</text>\n", f);
	if (c->subtitle) {
		fprintf(f, "<text x=\"%g\" y=\"50\" fill=\"#444\">", fr->left);
		put_escaped(f, c->subtitle);
		fputs("</text>\n", f);
	}
}

/* Grid lines, tick labels, the frame and the panel's y label. */
static void write_axes(FILE *f, const char *ylabel, const struct frame *fr)
{
	char lab[64];
	int k;

	fputs("<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n", f);
	k = 0;
	for (double x = fr->x0; k < MAX_TICKS && x <= fr->x1 + fr->xs * 1e-6; x += fr->xs, k++)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(fr, x), fr->top,
			px(fr, x), fr->top + fr->ph);
	k = 0;
	for (double y = fr->y0; k < MAX_TICKS && y <= fr->y1 + fr->ys * 1e-6; y += fr->ys, k++)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fr->left, py(fr, y),
			fr->left + fr->pw, py(fr, y));
	fputs("</g>\n<g fill=\"#222\">\n", f);
	k = 0;
	for (double x = fr->x0; k < MAX_TICKS && x <= fr->x1 + fr->xs * 1e-6; x += fr->xs, k++) {
		tick_label(lab, sizeof(lab), x, fr->xs);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			px(fr, x), fr->top + fr->ph + 18, lab);
	}
	k = 0;
	for (double y = fr->y0; k < MAX_TICKS && y <= fr->y1 + fr->ys * 1e-6; y += fr->ys, k++) {
		tick_label(lab, sizeof(lab), y, fr->ys);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			fr->left - 8, py(fr, y) + 4, lab);
	}
	fputs("</g>\n", f);
	fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#222\"/>\n",
		fr->left, fr->top, fr->pw, fr->ph);
	fprintf(f, "<text class=\"ylabel\" transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\">",
		fr->top + fr->ph / 2);
	put_escaped(f, ylabel);
	fputs("</text>\n", f);
}

static void write_xlabel(FILE *f, const struct svg_chart *c, const struct frame *fr, int H)
{
	fprintf(f, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
		fr->left + fr->pw / 2, (double)H - 22);
	put_escaped(f, c->xlabel);
	fputs("</text>\n", f);
}

static void write_marker(FILE *f, const struct svg_chart *c, const struct frame *fr, int labelled)
{
	if (!isfinite(c->marker_x))
		return;
	fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#000\" "
		   "stroke-width=\"1.5\" stroke-dasharray=\"2 4\"/>\n",
		px(fr, c->marker_x), fr->top, px(fr, c->marker_x), fr->top + fr->ph);
	if (!labelled)
		return;
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">", px(fr, c->marker_x) + 6, fr->top + 18);
	put_escaped(f, c->marker_label);
	fputs("</text>\n", f);
}

static void write_series(FILE *f, const struct svg_series *s, const struct frame *fr)
{
	int pen = 0;
	double w = s->width > 0 ? s->width : 2.0, op = s->opacity > 0 ? s->opacity : 1.0;

	fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-opacity=\"%g\"%s d=\"",
		s->color, w, op, s->dashed ? " stroke-dasharray=\"7 5\"" : "");
	for (int k = 0; k < s->n; k++) {
		if (!isfinite(s->x[k]) || !isfinite(s->y[k])) {
			pen = 0;
			continue;
		}
		fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", px(fr, s->x[k]), py(fr, s->y[k]));
		pen = 1;
	}
	fputs("\"/>\n", f);
	if (!s->dots)
		return;
	fprintf(f, "<g fill=\"%s\" fill-opacity=\"%g\">\n", s->color, op);
	for (int k = 0; k < s->n; k++)
		if (isfinite(s->x[k]) && isfinite(s->y[k]))
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n", px(fr, s->x[k]), py(fr, s->y[k]));
	fputs("</g>\n", f);
}

/* The legend right of each panel, for that panel's series. */
static void write_legend(FILE *f, const struct svg_series *s, int ns, const struct frame *fr, int panels)
{
	fputs("<g class=\"legend\">\n", f);
	for (int p = 0; p < panels; p++) {
		double lx = fr[p].left + fr[p].pw + 20, ly = fr[p].top + 10;

		for (int i = 0; i < ns; i++) {
			if (s[i].panel != p)
				continue;
			fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
				   "stroke-width=\"%g\" stroke-opacity=\"%g\"%s/>\n", lx, ly, lx + 30, ly, s[i].color,
				s[i].width > 0 ? s[i].width : 2.0, s[i].opacity > 0 ? s[i].opacity : 1.0,
				s[i].dashed ? " stroke-dasharray=\"7 5\"" : "");
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 38, ly + 4);
			put_escaped(f, s[i].label);
			fputs("</text>\n", f);
			ly += 22;
		}
	}
	fputs("</g>\n", f);
}

int svg_write(FILE *f, const struct svg_chart *c, const struct svg_series *s, int ns)
{
	int W = c->width > 0 ? c->width : 1070, H = c->height > 0 ? c->height : 600;
	const double right = 350, bottom = 70, gap = 40;
	struct frame fr[2] = { { .left = 90, .top = c->subtitle ? 70 : 50 }, { .left = 90 } };
	int panels = 1;

	if (fit_frame(&fr[0], c, s, ns, 0))
		return -1;
	/* a lower panel only for a y label and a drawable point to go with it */
	if (c->ylabel2 && !fit_frame(&fr[1], c, s, ns, 1))
		panels = 2;
	fr[0].pw = fr[1].pw = W - fr[0].left - right;
	fr[0].ph = H - fr[0].top - bottom;
	if (panels == 2) {
		double both = fr[0].ph - gap;

		fr[0].ph = both * 0.62;
		fr[1].ph = both - fr[0].ph;
		fr[1].top = fr[0].top + fr[0].ph + gap;
	}
	write_title(f, c, &fr[0], W, H);
	for (int p = 0; p < panels; p++) {
		write_axes(f, p ? c->ylabel2 : c->ylabel, &fr[p]);
		write_marker(f, c, &fr[p], p == 0);
	}
	write_xlabel(f, c, &fr[panels - 1], H);
	for (int i = 0; i < ns; i++)
		if (s[i].panel < panels)
			write_series(f, &s[i], &fr[s[i].panel]);
	write_legend(f, s, ns, fr, panels);
	fputs("</svg>\n", f);
	return ferror(f) ? -1 : 0;
}
