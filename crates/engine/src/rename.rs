//! `rename OLD NEW`: the record keeps its id; the name link moves (see
//! [`crate::record::Records::rename`]: the new name is claimed before the old one goes).

use crate::Engine;
use crate::error::Result;

pub fn rename(engine: &Engine, container: &str, new_name: &str) -> Result<()> {
    let id = engine.records.resolve(container)?;
    let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
    let old = engine.records.load(&id)?.name;
    engine.records.rename(&id, new_name)?;
    let record = engine.records.load(&id)?;
    crate::events::append(
        engine,
        &crate::events::Event::container(&record, "rename", &[("oldName", old.as_str())]),
    );
    Ok(())
}
