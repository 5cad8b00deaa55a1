"""Guardrails: checks on a request's input and its model's output, as one hook.

detectors   pure finders: PII (Luhn-checked cards, mod-97 IBANs, ...), words, regexes
credentials pure finders for secrets: provider API keys, private keys, JWTs, cloud keys
checks      one configured guardrail each: text finders, size, JSON schema, Presidio, HTTP
texts       where the text is in each operation's request and answer, read and rewritten
redactor    the streaming scanner: a bounded hold-back so matches split over chunks are caught,
            and PEM blocks held whole from begin to end marker (capped, else fail closed)
streams     the scanner applied to each operation's chunk stream
outcomes    what each guardrail did to a request (the header, `ctx.extras["guardrails"]`)
hook        the hook: which guardrails apply, input in `before`, output in `after` and streams
"""
