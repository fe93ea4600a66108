package residency

// The records of consents and objections in the embedded store, new in
// format 4 (codec.go describes the encoding). Their keys are those of
// agreements: account ID, a NUL byte, the reference.

func encodeConsent(c *ConsentRecord) []byte {
	e := encoder{b: make([]byte, 0, 48)}
	e.consent(c)
	return e.b
}

func (e *encoder) consent(c *ConsentRecord) {
	e.str(c.SubProcessor)
	e.time(c.ExpiresAt)
	e.time(c.Granted)
	e.time(c.Revoked)
}

func (d *decoder) consent(accountID, reference string) ConsentRecord {
	return ConsentRecord{Consent: Consent{AccountID: accountID, SubProcessor: d.str(), Reference: reference, ExpiresAt: d.time()},
		Granted: d.time(), Revoked: d.time()}
}

func encodeObjection(o *ObjectionRecord) []byte {
	e := encoder{b: make([]byte, 0, 40)}
	e.objection(o)
	return e.b
}

func (e *encoder) objection(o *ObjectionRecord) {
	e.str(o.SubProcessor)
	e.time(o.Raised)
	e.time(o.Withdrawn)
}

func (d *decoder) objection(accountID, reference string) ObjectionRecord {
	return ObjectionRecord{Objection: Objection{AccountID: accountID, SubProcessor: d.str(), Reference: reference},
		Raised: d.time(), Withdrawn: d.time()}
}
