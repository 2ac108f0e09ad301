//! Small serde helpers that give Go's decoding behaviour where the wire format relies on it.

use serde::{Deserialize, Deserializer};

/// Decodes `null` as the type's default value, the way Go leaves a field untouched on `null`.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
