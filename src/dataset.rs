//! Reading dataset files: parquet (via arrow) into JSON-like rows.
//!
//! Owns the conversion from arrow columns (strings, numbers, lists, structs —
//! ARC's nested `choices` included) to [`Row`]s that benchmarks turn into
//! samples. Does not own fetching (see [`crate::hub`]) or any benchmark
//! logic.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, BooleanArray, LargeStringArray, StringArray, StringViewArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

/// One dataset row: column name -> value.
pub type Row = Map<String, Value>;

/// Errors reading a dataset file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid parquet (or uses an unsupported feature).
    #[error("cannot read parquet file {path}: {message}")]
    Parquet {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
    /// A column has a type this reader does not convert.
    #[error("{path}: column `{column}` has unsupported type {data_type}")]
    Unsupported {
        /// File.
        path: String,
        /// Column.
        column: String,
        /// Arrow type.
        data_type: String,
    },
}

/// Read every row of a parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<Row>, DatasetError> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: p.clone(),
        source,
    })?;
    let perr = |e: &dyn std::fmt::Display| DatasetError::Parquet {
        path: p.clone(),
        message: e.to_string(),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| perr(&e))?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let reader = builder.build().map_err(|e| perr(&e))?;
    let mut rows = Vec::with_capacity(total);
    for batch in reader {
        let batch = batch.map_err(|e| perr(&e))?;
        let schema = batch.schema();
        let start = rows.len();
        rows.extend((0..batch.num_rows()).map(|_| Row::new()));
        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            for i in 0..batch.num_rows() {
                let v = to_json(col.as_ref(), i).ok_or_else(|| DatasetError::Unsupported {
                    path: p.clone(),
                    column: field.name().clone(),
                    data_type: col.data_type().to_string(),
                })?;
                rows[start + i].insert(field.name().clone(), v);
            }
        }
    }
    Ok(rows)
}

/// Value `i` of `array` as JSON, or `None` for an unsupported type.
fn to_json(array: &dyn Array, i: usize) -> Option<Value> {
    if array.is_null(i) {
        return Some(Value::Null);
    }
    macro_rules! prim {
        ($t:ty) => {
            Value::from(array.as_primitive::<$t>().value(i))
        };
    }
    Some(match array.data_type() {
        DataType::Utf8 => Value::String(
            array
                .as_any()
                .downcast_ref::<StringArray>()?
                .value(i)
                .to_string(),
        ),
        DataType::LargeUtf8 => Value::String(
            array
                .as_any()
                .downcast_ref::<LargeStringArray>()?
                .value(i)
                .to_string(),
        ),
        DataType::Utf8View => Value::String(
            array
                .as_any()
                .downcast_ref::<StringViewArray>()?
                .value(i)
                .to_string(),
        ),
        DataType::Boolean => Value::Bool(array.as_any().downcast_ref::<BooleanArray>()?.value(i)),
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(i);
            Value::Array(
                (0..list.len())
                    .map(|j| to_json(list.as_ref(), j))
                    .collect::<Option<_>>()?,
            )
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(i);
            Value::Array(
                (0..list.len())
                    .map(|j| to_json(list.as_ref(), j))
                    .collect::<Option<_>>()?,
            )
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut m = Map::new();
            for (f, col) in fields.iter().zip(s.columns()) {
                m.insert(f.name().clone(), to_json(col.as_ref(), i)?);
            }
            Value::Object(m)
        }
        _ => return None,
    })
}
