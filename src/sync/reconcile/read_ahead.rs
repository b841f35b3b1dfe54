//! Reading a paged listing ahead of the writer: the next page is fetched (and parsed) while the
//! current one is written, so a sync waits for the provider and the database at the same time
//! instead of one after the other. At most [`READ_AHEAD`] pages wait in between, so memory
//! stays bounded by a few pages.

use super::ReconcileError;
use crate::providers::{ProviderError, ProviderPage};
use tokio::sync::mpsc;

/// Pages fetched and not yet written, at most.
pub(super) const READ_AHEAD: usize = 4;

/// A page as the reader hands it over: fetched, or why not (the reader stops after an error).
pub(super) type Fetched<T> = Result<ProviderPage<T>, ProviderError>;

/// The reader of a listing: fetches the pages in order from `fetch` (given the previous page's
/// `next`), hands them over through the returned receiver, and stops after the last page or
/// the first error. The returned future must be polled alongside the writer ([`overlap`]).
pub(super) fn read_ahead<'a, T, F, Fut>(
    mut fetch: F,
) -> (mpsc::Receiver<Fetched<T>>, impl Future<Output = ()> + 'a)
where
    T: 'a,
    F: FnMut(Option<String>) -> Fut + 'a,
    Fut: Future<Output = Fetched<T>> + 'a,
{
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let reader = async move {
        let mut cursor = None;
        loop {
            let page = fetch(cursor.take()).await;
            let next = page.as_ref().ok().and_then(|p| p.next.clone());
            let last = next.is_none();
            if tx.send(page).await.is_err() || last {
                break;
            }
            cursor = next;
        }
        // The sender is dropped here: the writer sees the end of the listing.
        drop(tx);
        std::future::pending::<()>().await
    };
    (rx, reader)
}

/// Runs the writer to its end while polling the reader alongside it; the reader is dropped
/// (mid-request, if it is waiting for the provider) once the writer is done, whether the
/// writer succeeded or not.
pub(super) async fn overlap<R>(
    reader: impl Future<Output = ()>,
    writer: impl Future<Output = Result<R, ReconcileError>>,
) -> Result<R, ReconcileError> {
    tokio::select! {
        result = writer => result,
        () = reader => unreachable!("the reader never ends by itself"),
    }
}

/// The end of a listing without its last page: only when the reader was dropped early.
pub(super) fn cut_short() -> ReconcileError {
    ReconcileError::Domain(crate::error::DomainError::internal(std::io::Error::other(
        "the listing ended before its last page",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u32, of: u32) -> Fetched<u32> {
        Ok(ProviderPage {
            items: vec![n],
            next: (n + 1 < of).then(|| (n + 1).to_string()),
            delta_link: (n + 1 == of).then(|| "link".to_owned()),
        })
    }

    #[tokio::test]
    async fn every_page_arrives_in_order_and_the_reader_stays_at_most_two_ahead() {
        let fetched = std::sync::atomic::AtomicU32::new(0);
        let (mut pages, reader) = read_ahead(|cursor: Option<String>| {
            let n: u32 = cursor.map_or(0, |c| c.parse().unwrap());
            fetched.store(n + 1, std::sync::atomic::Ordering::SeqCst);
            async move { page(n, 10) }
        });
        let writer = async {
            let mut seen = Vec::new();
            while let Some(page) = pages.recv().await {
                let page = page.unwrap();
                let ahead = fetched.load(std::sync::atomic::Ordering::SeqCst) - page.items[0];
                assert!(ahead <= READ_AHEAD as u32 + 1, "{ahead} pages ahead");
                seen.extend(page.items);
                tokio::task::yield_now().await;
                if page.next.is_none() {
                    return Ok(seen);
                }
            }
            Err(cut_short())
        };
        let seen = overlap(reader, writer).await.unwrap();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_fetch_error_is_handed_over_and_ends_the_reading() {
        let (mut pages, reader) = read_ahead(|cursor: Option<String>| async move {
            match cursor {
                None => page(0, 5),
                Some(_) => Err(ProviderError::Http {
                    provider: "test",
                    url: "/users".into(),
                    status: 503,
                    detail: "down".into(),
                }),
            }
        });
        let writer = async {
            let mut pages_ok = 0;
            while let Some(page) = pages.recv().await {
                match page {
                    Ok(_) => pages_ok += 1,
                    Err(err) => return Err(ReconcileError::Provider(err)),
                }
            }
            Ok(pages_ok)
        };
        let err = overlap(reader, writer).await.unwrap_err();
        assert!(matches!(err, ReconcileError::Provider(_)));
    }
}
