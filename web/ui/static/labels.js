// Display names for references: "Patient/123" → "Ada Critical",
// "ServiceRequest/e3b4…" → "Ultrasonography". A reference is resolved once
// (GET, or the resource seen on the live feed) and cached; onChange runs
// when a fetched name arrives, so views can redraw.
import { api, codeText, patientName } from './fhir.js';

const MAX = 20000;

/** label is the short human name of a resource. */
export function label(r) {
  if (!r) return null;
  switch (r.resourceType) {
    case 'Patient':
      return patientName(r);
    case 'Task':
      return r.description || codeText(r.code) || null;
    case 'MedicationRequest':
      return codeText(r.medicationCodeableConcept) || null;
    case 'Communication':
      return r.payload?.[0]?.contentString ?? (codeText(r.category?.[0]) || null);
    default:
      return codeText(r.code) || r.name || r.title || null;
  }
}

/** Labels caches the display names of references. */
export class Labels {
  constructor(onChange = () => {}) {
    this.names = new Map(); // "Type/id" → name (null: has none)
    this.asked = new Set();
    this.onChange = onChange;
  }

  /** remember records the name of a resource seen elsewhere (live feed). */
  remember(r) {
    if (!r?.resourceType || !r.id) return;
    const n = label(r);
    if (n) this.set(`${r.resourceType}/${r.id}`, n);
  }

  set(ref, name) {
    if (this.names.size >= MAX) this.names.delete(this.names.keys().next().value);
    this.names.set(ref, name);
  }

  /**
   * ref returns the cached name of a reference ("Type/id"), or null while
   * it is being fetched (once) or when it has none.
   */
  ref(ref) {
    if (!ref || typeof ref !== 'string') return null;
    const m = ref.match(/(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/);
    if (!m) return null;
    const key = `${m[1]}/${m[2]}`;
    if (this.names.has(key)) return this.names.get(key);
    if (!this.asked.has(key) && this.asked.size < MAX) {
      this.asked.add(key);
      api('GET', `/${m[1]}/${encodeURIComponent(m[2])}`).then((r) => {
        const n = r.ok ? label(r.body) : null;
        if (n) {
          this.set(key, n);
          this.onChange();
        }
      });
    }
    return null;
  }

  /** patient returns a patient's name (or its id until the name is known). */
  patient(id) {
    if (!id) return null;
    return this.ref(`Patient/${id}`) ?? id;
  }
}
