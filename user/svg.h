/* A small SVG line-chart writer: axes with labelled ticks and units, one
 * polyline per series, a legend, and an optional vertical marker line. */
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
};

struct svg_chart {
	const char *title;
	const char *subtitle;	/* NULL for none */
	const char *xlabel;	/* include the unit, e.g. "supply b (kJ per slot)" */
	const char *ylabel;
	double marker_x;	/* NaN for none */
	const char *marker_label;
	int width, height;	/* 0: 1010 x 600 */
};

/* "Nice" tick step (1, 2 or 5 times a power of ten) for about `ticks` ticks. */
double svg_nice_step(double range, int ticks);
/* Write the document. 0 ok, -1 on a write error or no drawable point. */
int svg_write(FILE *f, const struct svg_chart *c, const struct svg_series *s, int ns);

#endif
