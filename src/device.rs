//! Choosing the device, and so the backend, that the networks run on.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// The compute backends sound2scene can run on.
///
/// `Flex` (Burn's pure-Rust CPU backend) is always available; `Wgpu` and `Cuda` are compiled in
/// with the cargo features of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// Burn's CPU backend (SIMD + rayon), the default.
    #[default]
    Flex,
    /// A GPU through wgpu (Vulkan, Metal, DX12); needs the `wgpu` feature.
    Wgpu,
    /// An NVIDIA GPU through CUDA; needs the `cuda` feature.
    Cuda,
}

/// The backend the user asked for is not compiled into this build.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The backend's cargo feature was not enabled at build time.
    #[error(
        "the {0} backend is not compiled into this build; rebuild with `--features {0}` \
         (e.g. `cargo run --release --features {0} -- ...`) or use `--device flex`"
    )]
    NotCompiled(BackendKind),
    /// The name is not one of `flex`, `wgpu`, `cuda`.
    #[error("unknown device '{0}': expected flex, wgpu or cuda")]
    Unknown(String),
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        })
    }
}

impl FromStr for BackendKind {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "flex" | "cpu" => Ok(BackendKind::Flex),
            "wgpu" | "gpu" | "vulkan" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            other => Err(DeviceError::Unknown(other.to_string())),
        }
    }
}

impl BackendKind {
    /// Whether this build can run on the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => true,
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backend's default device (the first GPU for `Wgpu` and `Cuda`).
    ///
    /// # Errors
    /// [`DeviceError::NotCompiled`] when the backend's feature is off in this build.
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(Device::cuda(0usize)),
            #[allow(unreachable_patterns)]
            other => Err(DeviceError::NotCompiled(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("flex".parse::<BackendKind>().ok(), Some(BackendKind::Flex));
        assert_eq!("WGPU".parse::<BackendKind>().ok(), Some(BackendKind::Wgpu));
        assert!("tpu".parse::<BackendKind>().is_err());
    }

    #[test]
    fn missing_backend_is_a_clear_error() {
        if !BackendKind::Cuda.is_compiled() {
            let err = BackendKind::Cuda
                .device()
                .expect_err("cuda is not compiled in");
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
        assert!(BackendKind::Flex.device().is_ok());
    }
}
