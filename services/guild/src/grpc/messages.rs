use std::sync::Arc;

use mzchat_platform::{error::to_status, rate_limit::Limit, session_keys::SessionKeys};
use mzchat_proto::guild::{
    self as pb, list_messages_request, message_service_server::MessageService,
};
use tonic::{Request, Response, Status};

use super::caller;
use crate::{
    app::{GuildApp, MessageRef},
    convert,
    domain::{
        GuildError,
        message::{Anchor, Draft},
    },
};

pub struct MessageGrpc {
    app: Arc<GuildApp>,
    keys: Arc<SessionKeys>,
}

impl MessageGrpc {
    pub fn new(app: Arc<GuildApp>, keys: Arc<SessionKeys>) -> Self {
        Self { app, keys }
    }

    fn out(&self, m: &crate::domain::model::Message) -> pb::Message {
        convert::message(m, &self.app.config.server.assets_origin)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn status(err: GuildError) -> Status {
    to_status(&err)
}

#[tonic::async_trait]
impl MessageService for MessageGrpc {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Reply<pb::SendMessageResponse> {
        let caller = caller(&self.keys, &request).await?;
        self.app
            .rate
            .check(Limit::MessageSend, &caller.device())
            .await?;
        let r = request.into_inner();
        let draft = Draft {
            content: r.content,
            mention_user_ids: r.mention_user_ids,
            mention_everyone: r.mention_everyone,
            attachment_file_ids: r.attachment_file_ids,
        };
        let message = self
            .app
            .send_message(&caller, &r.guild_id, &r.channel_id, draft, &r.nonce)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SendMessageResponse {
            message: Some(self.out(&message)),
        }))
    }

    async fn edit_message(
        &self,
        request: Request<pb::EditMessageRequest>,
    ) -> Reply<pb::EditMessageResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let draft = Draft {
            content: r.content,
            mention_user_ids: r.mention_user_ids,
            mention_everyone: r.mention_everyone,
            attachment_file_ids: vec![],
        };
        let message = self
            .app
            .edit_message(&caller, &r.guild_id, &r.channel_id, &r.message_id, draft)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::EditMessageResponse {
            message: Some(self.out(&message)),
        }))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Reply<pb::DeleteMessageResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .delete_message(&caller, &r.guild_id, &r.channel_id, &r.message_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteMessageResponse {}))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Reply<pb::GetMessageResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let message = self
            .app
            .get_message(&caller, &r.guild_id, &r.channel_id, &r.message_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(self.out(&message)),
        }))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Reply<pb::ListMessagesResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let anchor = match r.anchor {
            None => Anchor::Latest,
            Some(list_messages_request::Anchor::Before(id)) => Anchor::Before(id),
            Some(list_messages_request::Anchor::After(id)) => Anchor::After(id),
            Some(list_messages_request::Anchor::Around(id)) => Anchor::Around(id),
        };
        let messages = self
            .app
            .list_messages(&caller, &r.guild_id, &r.channel_id, anchor, r.limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.iter().map(|m| self.out(m)).collect(),
        }))
    }

    async fn pin_message(
        &self,
        request: Request<pb::PinMessageRequest>,
    ) -> Reply<pb::PinMessageResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .set_pin(&caller, &r.guild_id, &r.channel_id, &r.message_id, true)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::PinMessageResponse {}))
    }

    async fn unpin_message(
        &self,
        request: Request<pb::UnpinMessageRequest>,
    ) -> Reply<pb::UnpinMessageResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .set_pin(&caller, &r.guild_id, &r.channel_id, &r.message_id, false)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UnpinMessageResponse {}))
    }

    async fn list_pins(
        &self,
        request: Request<pb::ListPinsRequest>,
    ) -> Reply<pb::ListPinsResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (messages, next_page_token) = self
            .app
            .list_pins(
                &caller,
                &r.guild_id,
                &r.channel_id,
                r.page_size,
                &r.page_token,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListPinsResponse {
            messages: messages.iter().map(|m| self.out(m)).collect(),
            next_page_token,
        }))
    }

    async fn add_reaction(
        &self,
        request: Request<pb::AddReactionRequest>,
    ) -> Reply<pb::AddReactionResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .add_reaction(&caller, &r.guild_id, &r.channel_id, &r.message_id, &r.emoji)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AddReactionResponse {}))
    }

    async fn remove_reaction(
        &self,
        request: Request<pb::RemoveReactionRequest>,
    ) -> Reply<pb::RemoveReactionResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .remove_reaction(
                &caller,
                &r.guild_id,
                &r.channel_id,
                &r.message_id,
                &r.emoji,
                &r.user_id,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RemoveReactionResponse {}))
    }

    async fn list_reactions(
        &self,
        request: Request<pb::ListReactionsRequest>,
    ) -> Reply<pb::ListReactionsResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (user_ids, next_page_token) = self
            .app
            .list_reactions(
                &caller,
                MessageRef {
                    guild_id: &r.guild_id,
                    channel_id: &r.channel_id,
                    message_id: &r.message_id,
                },
                &r.emoji,
                r.page_size,
                &r.page_token,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListReactionsResponse {
            user_ids,
            next_page_token,
        }))
    }

    async fn send_typing(
        &self,
        request: Request<pb::SendTypingRequest>,
    ) -> Reply<pb::SendTypingResponse> {
        let caller = caller(&self.keys, &request).await?;
        self.app.rate.check(Limit::Typing, &caller.device()).await?;
        let r = request.into_inner();
        self.app
            .send_typing(&caller, &r.guild_id, &r.channel_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SendTypingResponse {}))
    }
}
