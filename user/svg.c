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
	return nice * p;
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
	int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (dec > 6)
		dec = 6;
	if (fabs(v) < step * 1e-9)
		v = 0.0;
	snprintf(buf, len, "%.*f", dec, v);
}

int svg_write(FILE *f, const struct svg_chart *c, const struct svg_series *s, int ns)
{
	int W = c->width > 0 ? c->width : 1070, H = c->height > 0 ? c->height : 600;
	const double left = 90, right = 350, top = c->subtitle ? 70 : 50, bottom = 70;
	double x0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
	int points = 0;

	for (int i = 0; i < ns; i++)
		for (int k = 0; k < s[i].n; k++) {
			if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k]))
				continue;
			x0 = fmin(x0, s[i].x[k]);
			x1 = fmax(x1, s[i].x[k]);
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
	double y0 = 0.0;
	if (!(y1 > 0.0))
		y1 = 1.0;
	double xs = svg_nice_step(x1 - x0, 8), ys = svg_nice_step(y1 - y0, 6);
	x0 = floor(x0 / xs) * xs;
	x1 = ceil(x1 / xs) * xs;
	y1 = ceil(y1 * 1.02 / ys) * ys;
	double pw = W - left - right, ph = H - top - bottom;
#define PX(x) (left + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (top + ph - ((y) - y0) / (y1 - y0) * ph)

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n"
		   "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H, W, H, W, H);
	fprintf(f, "<text x=\"%g\" y=\"28\" font-size=\"17\" font-weight=\"bold\">", left);
	put_escaped(f, c->title);
	fputs("</text>\n", f);
	if (c->subtitle) {
		fprintf(f, "<text x=\"%g\" y=\"50\" fill=\"#444\">", left);
		put_escaped(f, c->subtitle);
		fputs("</text>\n", f);
	}
	/* grid and ticks */
	char lab[64];
	fputs("<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n", f);
	for (double x = x0; x <= x1 + xs * 1e-6; x += xs)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(x), top, PX(x), top + ph);
	for (double y = y0; y <= y1 + ys * 1e-6; y += ys)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", left, PY(y), left + pw, PY(y));
	fputs("</g>\n<g fill=\"#222\">\n", f);
	for (double x = x0; x <= x1 + xs * 1e-6; x += xs) {
		tick_label(lab, sizeof(lab), x, xs);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			PX(x), top + ph + 18, lab);
	}
	for (double y = y0; y <= y1 + ys * 1e-6; y += ys) {
		tick_label(lab, sizeof(lab), y, ys);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			left - 8, PY(y) + 4, lab);
	}
	fputs("</g>\n", f);
	fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#222\"/>\n",
		left, top, pw, ph);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + pw / 2, (double)H - 22);
	put_escaped(f, c->xlabel);
	fputs("</text>\n", f);
	fprintf(f, "<text transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\">", top + ph / 2);
	put_escaped(f, c->ylabel);
	fputs("</text>\n", f);

	if (isfinite(c->marker_x)) {
		fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#000\" "
			   "stroke-width=\"1.5\" stroke-dasharray=\"2 4\"/>\n",
			PX(c->marker_x), top, PX(c->marker_x), top + ph);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">",
			PX(c->marker_x) + 6, top + 18);
		put_escaped(f, c->marker_label);
		fputs("</text>\n", f);
	}
	for (int i = 0; i < ns; i++) {
		int pen = 0;
		double w = s[i].width > 0 ? s[i].width : 2.0, op = s[i].opacity > 0 ? s[i].opacity : 1.0;
		fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-opacity=\"%g\"%s d=\"",
			s[i].color, w, op, s[i].dashed ? " stroke-dasharray=\"7 5\"" : "");
		for (int k = 0; k < s[i].n; k++) {
			if (!isfinite(s[i].x[k]) || !isfinite(s[i].y[k])) {
				pen = 0;
				continue;
			}
			fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", PX(s[i].x[k]), PY(s[i].y[k]));
			pen = 1;
		}
		fputs("\"/>\n", f);
		if (s[i].dots) {
			fprintf(f, "<g fill=\"%s\" fill-opacity=\"%g\">\n", s[i].color, op);
			for (int k = 0; k < s[i].n; k++)
				if (isfinite(s[i].x[k]) && isfinite(s[i].y[k]))
					fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n",
						PX(s[i].x[k]), PY(s[i].y[k]));
			fputs("</g>\n", f);
		}
	}
	/* legend */
	double lx = left + pw + 20, ly = top + 10;
	for (int i = 0; i < ns; i++, ly += 22) {
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			   "stroke-width=\"%g\" stroke-opacity=\"%g\"%s/>\n", lx, ly, lx + 30, ly, s[i].color,
			s[i].width > 0 ? s[i].width : 2.0, s[i].opacity > 0 ? s[i].opacity : 1.0,
			s[i].dashed ? " stroke-dasharray=\"7 5\"" : "");
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 38, ly + 4);
		put_escaped(f, s[i].label);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
#undef PX
#undef PY
	return ferror(f) ? -1 : 0;
}
