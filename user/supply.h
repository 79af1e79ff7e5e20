/* One slot of the supply ledger, docs/theory.md §3: demand against baseline supply,
 * with optional storage. Pure arithmetic, shared by the live ledger and the
 * offline simulator (erg sim). */
#ifndef ERG_SUPPLY_H
#define ERG_SUPPLY_H

struct slot_outcome {
	double demand;		/* D_t, joules */
	double supply;		/* b_t, joules */
	double aux;		/* A_t, auxiliary energy drawn */
	double waste;		/* W_t, baseline supply not used or stored */
	double storage;		/* S_{t+1}, after the slot */
};

/* docs/theory.md §3.1 (capacity 0) and §3.2 (capacity C > 0):
 * S' = clip(S + b - D, 0, C); what is clipped at 0 is auxiliary, at C waste.
 * *storage is S on entry and S' on return. Always aux - waste = D - b + (S' - S). */
void supply_step(double demand, double supply, double capacity, double *storage,
		 struct slot_outcome *out);

#endif
