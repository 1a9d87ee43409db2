//! Reading and writing `f32` NumPy `.npy` files of any rank (built on `ndarray-npy`).
//!
//! Data is always exchanged row-major (C order): Fortran-ordered files are transposed on read
//! and files are written with `fortran_order: False`.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyError, read_npy, write_npy};

use crate::error::{AudioError, Result};

/// An n-dimensional `f32` array: `shape` and row-major `data` (`data.len()` = product of shape).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// Dimensions, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// Values in row-major (C) order.
    pub data: Vec<f32>,
}

fn npy_err(path: &Path, detail: String) -> AudioError {
    AudioError::Npy {
        path: path.to_path_buf(),
        detail,
        source: None,
    }
}

/// An [`AudioError::Npy`] whose `detail` names `source`, kept as its source.
fn npy_caused(
    path: &Path,
    detail: String,
    source: impl std::error::Error + Send + Sync + 'static,
) -> AudioError {
    AudioError::Npy {
        path: path.to_path_buf(),
        detail,
        source: Some(Box::new(source)),
    }
}

/// Read a `.npy` file of any rank holding little-endian `float32` (or `float64`, converted to
/// `f32`), in C or Fortran order; the returned data is row-major.
pub fn read_npy_f32(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let array: ArrayD<f32> = match read_npy::<_, ArrayD<f32>>(path) {
        Ok(a) => a,
        Err(ReadNpyError::WrongDescriptor(_)) => read_npy::<_, ArrayD<f64>>(path)
            .map_err(|e| {
                let detail =
                    format!("{e}; expected a float32 or float64 array, re-save it with np.save");
                npy_caused(path, detail, e)
            })?
            .mapv(|v| v as f32),
        Err(ReadNpyError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(npy_caused(
                path,
                "file does not exist; check the path".into(),
                e,
            ));
        }
        Err(e) => {
            let detail =
                format!("{e}; the file is not a valid float32 .npy, re-save it with np.save");
            return Err(npy_caused(path, detail, e));
        }
    };
    let shape = array.shape().to_vec();
    let data = if array.is_standard_layout() {
        array.into_raw_vec_and_offset().0
    } else {
        array.iter().copied().collect()
    };
    Ok(NpyArray { shape, data })
}

/// Write row-major `data` of the given `shape` as a C-ordered (`fortran_order: False`)
/// little-endian `float32` `.npy` file.
pub fn write_npy_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<()> {
    let path = path.as_ref();
    let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(data.len()) {
        return Err(npy_err(
            path,
            format!(
                "shape {shape:?} does not hold {} values; pass matching shape and data",
                data.len()
            ),
        ));
    }
    let array = ArrayD::from_shape_vec(IxDyn(shape), data.to_vec())
        .map_err(|e| npy_caused(path, e.to_string(), e))?;
    write_npy(path, &array).map_err(|e| {
        let detail = format!("{e}; check that the directory exists and is writable");
        npy_caused(path, detail, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("s2s-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn roundtrip_rank3_is_c_order() {
        let p = temp("r3.npy");
        let data: Vec<f32> = (0..24).map(|v| v as f32 * 0.5).collect();
        write_npy_f32(&p, &[2, 3, 4], &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header = String::from_utf8_lossy(&bytes[10..80]);
        assert!(header.contains("'fortran_order': False"), "{header}");
        assert!(header.contains("'<f4'"), "{header}");
        let back = read_npy_f32(&p).unwrap();
        assert_eq!(back.shape, vec![2, 3, 4]);
        assert_eq!(back.data, data);
    }

    #[test]
    fn fortran_order_is_returned_row_major() {
        // A hand-written [2, 3] Fortran-ordered file holding [[0, 1, 2], [3, 4, 5]].
        let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        for v in [0f32, 3.0, 1.0, 4.0, 2.0, 5.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let p = temp("fortran.npy");
        std::fs::write(&p, bytes).unwrap();
        let a = read_npy_f32(&p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(write_npy_f32(temp("bad.npy"), &[2, 2], &[0.0; 3]).is_err());
        let p = temp("garbage.npy");
        std::fs::write(&p, b"not numpy").unwrap();
        assert!(matches!(read_npy_f32(&p), Err(AudioError::Npy { .. })));
        assert!(read_npy_f32(temp("missing.npy")).is_err());
    }
}
