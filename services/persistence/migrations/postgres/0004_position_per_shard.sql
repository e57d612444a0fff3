-- depends: 0003_auth
--
-- One position per engine shard: with several shards, each shard's records
-- are applied by their own writer, in that shard's sequence order, and
-- skipped at or below that shard's position (services.matcher.shard:
-- sequence numbers carry their shard). Row 0 is shard 0, as before.

ALTER TABLE projection_position DROP CONSTRAINT projection_position_id_check;
ALTER TABLE projection_position ADD CONSTRAINT projection_position_shard CHECK (id >= 0);
