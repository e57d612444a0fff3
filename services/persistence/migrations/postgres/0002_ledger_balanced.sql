-- depends: 0001_projections
--
-- Double entry, proved by the database: at COMMIT every ledger entry
-- (seq, idx) that the transaction touched has, per asset, debits equal to
-- credits; otherwise the COMMIT fails and nothing of the transaction stays.
--
-- The check is a constraint trigger DEFERRABLE INITIALLY DEFERRED, because an
-- entry's postings are separate rows: a row-by-row or statement-by-statement
-- check would refuse every entry before its last posting is in. PostgreSQL
-- allows only row-level constraint triggers, so the check runs once per
-- posting changed; the function skips a posting of the entry it has just
-- proved in the same round of checks (the postings of an entry are written
-- together, so their checks queue one after the other), which makes the cost
-- one indexed aggregate per entry rather than per posting (a trade is one
-- entry of up to 8 postings: checking every posting made a batch's apply 1.8
-- times slower in bench.persister; checking every entry costs about 15%).
--
-- What "just proved" means is kept in a transaction-local setting. Any
-- statement that changes the ledger clears it first (the BEFORE statement
-- trigger), so a check that ran earlier in the transaction (SET CONSTRAINTS
-- ... IMMEDIATE) is never taken to cover a later change.

-- plpgsql rather than SQL so that the query's plan is prepared once per session.
CREATE FUNCTION ledger_entry_unbalanced(entry_seq BIGINT, entry_idx BIGINT) RETURNS TEXT
LANGUAGE plpgsql STABLE AS $$
DECLARE
    problem TEXT;
BEGIN
    SELECT format('asset %s: debits %s, credits %s', asset, sum(debit), sum(credit))
      INTO problem
      FROM ledger
     WHERE seq = entry_seq AND idx = entry_idx
     GROUP BY asset
    HAVING sum(debit) <> sum(credit)
     ORDER BY asset
     LIMIT 1;
    RETURN problem;
END
$$;

CREATE FUNCTION ledger_check_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    entry TEXT;
    problem TEXT;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        -- A deleted posting, or one an update moved to another entry, unbalances the entry it left.
        IF TG_OP = 'DELETE' OR (OLD.seq, OLD.idx) IS DISTINCT FROM (NEW.seq, NEW.idx) THEN
            problem := ledger_entry_unbalanced(OLD.seq, OLD.idx);
            IF problem IS NOT NULL THEN
                RAISE EXCEPTION 'unbalanced ledger entry %.%: %', OLD.seq, OLD.idx, problem
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entry_balanced', TABLE = 'ledger';
            END IF;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN NULL;
        END IF;
    END IF;
    entry := NEW.seq || '.' || NEW.idx;
    IF current_setting('rialto.ledger_proved', true) IS NOT DISTINCT FROM entry THEN
        RETURN NULL;
    END IF;
    problem := ledger_entry_unbalanced(NEW.seq, NEW.idx);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'unbalanced ledger entry %.%: %', NEW.seq, NEW.idx, problem
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entry_balanced', TABLE = 'ledger';
    END IF;
    PERFORM set_config('rialto.ledger_proved', entry, true);
    RETURN NULL;
END
$$;

CREATE FUNCTION ledger_forget_proved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('rialto.ledger_proved', '', true);
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_changes_forget_proved
    BEFORE INSERT OR UPDATE OR DELETE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forget_proved();

CREATE CONSTRAINT TRIGGER ledger_entry_balanced
    AFTER INSERT OR UPDATE OR DELETE ON ledger
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_entry();
