/* A small SVG line-chart writer: axes with labelled ticks and units, one
 * polyline per series, a legend, and an optional vertical marker line.
 * Series in different units go in two panels over one x axis (the lower
 * one when the chart has ylabel2), never on one y axis. */
#ifndef ERG_SVG_H
#define ERG_SVG_H

#include <stdio.h>

struct svg_series {
	const char *label;
	const double *x, *y;	/* n points; NaN y breaks the line */
	int n;
	const char *color;	/* e.g. "#1f77b4" */
	int dashed;
	int dots;		/* draw a dot on every point */
	double width;		/* stroke width; 0: 2 */
	double opacity;		/* 0: 1 */
	int panel;		/* 0: the upper (or only) panel, 1: the lower one */
};

struct svg_chart {
	const char *title;
	const char *subtitle;	/* NULL for none */
	const char *xlabel;	/* include the unit, e.g. "supply b (kJ per slot)" */
	const char *ylabel;
	const char *ylabel2;	/* the lower panel's y label (its unit); NULL: one panel */
	double marker_x;	/* NaN for none */
	const char *marker_label;
	int width, height;	/* 0: 1010 x 600 */
};

/* "Nice" tick step (1, 2 or 5 times a power of ten) for about `ticks` ticks. */
double svg_nice_step(double range, int ticks);
/* Write the document: <text class="xlabel">, class="ylabel" per panel, the
 * legend in <g class="legend"> with one <text> per series. 0 ok, -1 on a
 * write error or no drawable point in the upper panel. */
int svg_write(FILE *f, const struct svg_chart *c, const struct svg_series *s, int ns);

#endif
