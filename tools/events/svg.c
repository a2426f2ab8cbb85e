/* svg.c: a timeline as a plain SVG picture (SVG 1.1, no script, no
 * external file), one row per step, one bar per attempt and wait.
 *
 * Readable at any size: the picture is 1000 px wide; rows are 20 px high
 * for up to 30 steps and shrink to 3 px (1,000 steps: 3,080 px high);
 * when rows are lower than a line of text, only every k-th row is
 * labelled (in bold when on the critical path, whose bars are outlined in
 * black). A name too long for the margin loses its middle. Kinds are CSS classes, so a bar is some 60 bytes: 1,000
 * steps are about 200 KB. Bars carry a tooltip (<title>) up to 300 steps. */
#include <math.h>
#include <string.h>
#include "events.h"

enum { W = 1000, CHART_X = 190, CHART_W = 790, TOP = 46, LEGEND = 34 };

static void xml_text(const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '&': fputs("&amp;", stdout); break;
		case '<': fputs("&lt;", stdout); break;
		case '>': fputs("&gt;", stdout); break;
		case '"': fputs("&quot;", stdout); break;
		default: putchar(*s);
		}
}

/* name, its middle cut out ("…") to at most max characters. */
static void label_text(const char *name, int max)
{
	int n = (int)strlen(name);
	if (n <= max || max < 5) {
		xml_text(name);
		return;
	}
	char buf[256];
	int head = (max - 1) / 2, tail = max - 1 - head;
	snprintf(buf, sizeof buf, "%.*s\xe2\x80\xa6%s", head, name, name + n - tail);
	xml_text(buf);
}

/* A round step for the time axis: 1, 2 or 5 times a power of ten. */
static double tick_step(double span)
{
	double raw = span / 8, p = pow(10, floor(log10(raw > 0 ? raw : 1)));
	return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

static void svg_head(const struct timeline *tl, int height, double span)
{
	printf("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	       "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n<style>",
	       W, height, W, height);
	for (int k = 0; k < K_KINDS; k++)
		printf(".%c{fill:%s}", "wrycfs"[k], tl_colour[k]);
	printf(".k{stroke:#000;stroke-width:1}.g{stroke:#e6e6e6}.t{fill:#555}</style>\n");
	printf("<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<text x=\"8\" y=\"18\" "
	       "font-size=\"14\" font-weight=\"bold\">", W, height);
	xml_text(tl->job ? tl->job : "?");
	printf("</text><text x=\"%d\" y=\"18\" class=\"t\">%.3f s, %zu steps; outlined: the critical "
	       "path</text>\n", CHART_X, span, tl->n);
	double step = tick_step(span);
	for (double t = 0; span > 0 && t <= span * 1.0001; t += step) {
		double x = CHART_X + t / span * CHART_W;
		printf("<line class=\"g\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
		       "<text x=\"%.1f\" y=\"%d\" class=\"t\" text-anchor=\"middle\">%gs</text>\n",
		       x, TOP - 4, x, height - LEGEND, x, TOP - 8, t);
	}
}

static void svg_bar(const struct tl_step *s, const struct attempt *a, double y, double h,
                    double scale, int tips)
{
	double x = CHART_X + a->start * scale, w = (a->end - a->start) * scale;
	if (a->kind == K_SKIP)
		w = h;  /* a square where it was skipped */
	printf("<rect class=\"%c%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"",
	       "wrycfs"[a->kind], s->critical && a->kind != K_WAIT ? " k" : "", x, y,
	       w < 0.6 ? 0.6 : w, h);
	if (!tips) {
		printf("/>\n");
		return;
	}
	printf("><title>");
	xml_text(s->name);
	printf(": %s %.3f-%.3fs</title></rect>\n", tl_kind[a->kind], a->start, a->end);
}

static void svg_label(const struct tl_step *s, double y, int font)
{
	printf("<text x=\"%d\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"end\"%s>", CHART_X - 6, y,
	       font, s->critical ? " font-weight=\"bold\"" : "");
	label_text(s->name, (int)((CHART_X - 14) / (font * 0.6)));
	printf("</text>\n");
}

static void svg_legend(int height)
{
	int x = 8, y = height - LEGEND + 14;
	for (int k = 0; k < K_KINDS; k++, x += 100)
		printf("<rect class=\"%c\" x=\"%d\" y=\"%d\" width=\"14\" height=\"10\"/>"
		       "<text x=\"%d\" y=\"%d\">%s</text>\n", "wrycfs"[k], x, y, x + 18, y + 9, tl_kind[k]);
	printf("<rect class=\"r k\" x=\"%d\" y=\"%d\" width=\"14\" height=\"10\"/>"
	       "<text x=\"%d\" y=\"%d\">critical path</text>\n", x, y, x + 18, y + 9);
}

int svg_timeline(const struct timeline *tl)
{
	int rh = tl->n ? 600 / (int)tl->n : 20;
	rh = rh < 3 ? 3 : rh > 20 ? 20 : rh;
	int height = TOP + (int)tl->n * rh + LEGEND, font = rh - 4 < 11 ? rh - 4 : 11;
	int every = font >= 8 ? 1 : (int)ceil(12.0 / rh);  /* label every k-th row */
	double span = tl->t1 - tl->t0, scale = span > 0 ? CHART_W / span : 0;
	svg_head(tl, height, span);
	for (size_t i = 0; i < tl->n; i++) {
		const struct tl_step *s = &tl->s[i];
		double y = TOP + (double)i * rh, h = rh > 4 ? rh * 0.7 : rh - 1;
		if (rh >= 8 && i % 2)
			printf("<rect x=\"0\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#f7f7f7\"/>\n", y, W, rh);
		for (size_t j = 0; j < s->na; j++)
			svg_bar(s, &s->a[j], y + (rh - h) / 2, h, scale, tl->n <= 300);
		if (i % every == 0)
			svg_label(s, y + rh / 2.0 + (font < 8 ? 4 : font * 0.35), font < 8 ? 10 : font);
	}
	svg_legend(height);
	printf("</svg>\n");
	return EX_OK;
}
